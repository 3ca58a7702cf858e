"""One file per softmax mask; each registers itself with utils.masking.register_mask."""
