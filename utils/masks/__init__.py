"""One file per softmax mask; each registers itself with utils.masking.register_mask."""
from utils.registry import Registry

MASKS = Registry("mask", "utils.masks")
