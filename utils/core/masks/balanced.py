from utils.core.masks import register_mask
from utils.core.masks.base import Mask
from utils.core.masks.functional import add_prior


@register_mask("balanced")
class BalancedMask(Mask):
    """Balanced Softmax (Jodelet et al. 2021): ẑ_j = z_j + log n_j on every entry, where n_j counts class j in
    the current training distribution (the task's labels and the buffer's at the task start, from the model's
    label counts); n_j = 0 gives −∞ (masked)."""

    def __call__(self, logits, keep):
        if self.counts.distribution is None:
            raise RuntimeError("balanced mask used before the model's label counts had a task's class counts "
                               "(ContinualModel.begin_task)")
        return add_prior(logits, self.counts.distribution.float().log())
