import torch

from utils.masks import register_mask
from utils.masks.base import Mask


@register_mask("balanced")
class BalancedMask(Mask):
    """Balanced Softmax (Jodelet et al. 2021): ẑ_j = z_j + log n_j on every entry, where n_j
    counts class j in the current training distribution; n_j = 0 gives −∞ (masked)."""

    def __init__(self, value=None, counts=None):
        super().__init__(value)
        self.log_counts = None if counts is None else torch.as_tensor(counts, dtype=torch.float32).log()

    def update_class_counts(self, counts):
        self.log_counts = counts.float().log()

    def state_dict(self):
        return {"log_counts": self.log_counts}

    def load_state_dict(self, state):
        self.log_counts = state["log_counts"]

    def __call__(self, logits, keep):
        if self.log_counts is None:
            raise RuntimeError("balanced mask used before update_class_counts() gave it class counts")
        return logits + self.log_counts.to(logits.device)[:logits.shape[1]]  # X-DER's buffer CE: past heads only
