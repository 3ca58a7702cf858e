"""Reference data: the published hyperparameters (--config best) and the published figures, each
citation beside its numbers."""
