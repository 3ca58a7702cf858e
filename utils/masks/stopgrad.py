import torch

from utils.masks import register_mask
from utils.masks.base import Mask


@register_mask("stopgrad")
class StopGradientMask(Mask):
    """ẑ_j = sg(z_j) + m for masked j: the forward pass is unchanged at m = 0, the gradient
    to masked classes is cut (the paper's stop-gradient masking)."""
    USES_VALUE = True

    def __call__(self, logits, keep):
        return torch.where(keep, logits, logits.detach() + self.value)
