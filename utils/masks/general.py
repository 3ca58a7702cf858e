from utils.masks import register_mask
from utils.masks.base import Mask


@register_mask("general")
class GeneralMask(Mask):
    """ẑ_j = m for masked j (the paper's general masked softmax; m = −∞ is `ninf`).

    The masked entries are constants, so their gradient is zero; m sets how hard the kept
    classes are pushed (larger m: more plastic, lower m: more stable).
    """
    USES_VALUE = True

    def __call__(self, logits, keep):
        return logits.masked_fill(~keep, self.value)
