"""Backbones: ResNet18 (CIFAR stem) and the MLP used on the small digit datasets, and their heads."""

HEADS = ("linear", "cosine", "rpc", "fno")  # what backbone/heads.py builds; here so that the parser reads it without torch
