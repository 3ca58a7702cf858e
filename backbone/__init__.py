"""Backbones: ResNet18 (CIFAR stem) and the MLP used on the small digit datasets, and their heads."""

HEADS = ("linear", "cosine", "rpc", "fno")  # built by backbone/heads.py; here so the parser needs no torch
