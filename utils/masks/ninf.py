from utils.masks import register_mask
from utils.masks.base import Mask


@register_mask("ninf")
class NegativeInfinityMask(Mask):
    """ẑ_j = −∞ for masked j: softmax over the kept classes only, zero gradient to the rest."""

    def __call__(self, logits, keep):
        return logits.masked_fill(~keep, float("-inf"))
