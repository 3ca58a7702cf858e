"""Backbones: ResNet18 (CIFAR stem) and the MLP used on the small digit datasets."""
