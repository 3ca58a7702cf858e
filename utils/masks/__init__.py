"""Mask registry: one file per softmax mask in this folder, each registered with @register_mask("name");
the base class and build_mask are in base.py."""
from utils.registry import Registry

MASKS = Registry("mask", "utils.masks")
register_mask = MASKS.register
