"""The continual-learning core: the training loop and its state, evaluation and metrics, the buffer, the
label counts, the masks and the corrections of recency bias."""
