"""Softmax masks (Kim et al., arXiv 2309.14808) and the masked cross-entropy.

A mask rewrites the logits z [B, C] of a cross-entropy given keep [B, C] (True = the row's
softmax keeps that class). Each mask is one file in utils/masks/, registered by name.
"""
import torch
import torch.nn.functional as F

from utils.args import DEFAULT_MASK_VALUE, check_mask_value
from utils.masks import MASKS

register_mask = MASKS.register


def get_mask_names():
    return MASKS.names()


def masks_using_value():
    return [name for name in MASKS.names() if MASKS.get(name).USES_VALUE]


def resolve_mask_value(name, value):
    """m for mask `name`: the default where it uses one and none was given, None where it does not
    use one; a value given to a mask that ignores it, or not finite and not -inf, is a ValueError."""
    if not MASKS.get(name).USES_VALUE:
        if value is not None:
            raise ValueError(f"argument --mask_value: {value!r} is not allowed with mask {name}, which has no "
                             f"mask value (masks that use one: {', '.join(masks_using_value())})")
        return None
    return DEFAULT_MASK_VALUE if value is None else check_mask_value(value)


class Mask:
    """Base mask: subclasses implement __call__(logits, keep) -> new logits (never in place).

    USES_VALUE: the mask reads m (`--mask_value`); others refuse one."""
    USES_VALUE = False

    def __init__(self, value=None):
        self.value = resolve_mask_value(self.NAME, value)

    @staticmethod
    def add_args(parser):
        """Flags of this mask (none by default)."""

    def update_class_counts(self, counts):
        """Called at each task start with n_j, the class counts of the training distribution."""

    def state_dict(self):
        """What a checkpoint must keep of this mask (nothing by default)."""
        return {}

    def load_state_dict(self, state):
        """Restore what state_dict() returned."""

    def __call__(self, logits, keep):
        raise NotImplementedError


def build_mask(name, value=None, **options):
    """The mask registered as `name`, a callable mask(logits, keep) -> logits."""
    return MASKS.get(name)(value=value, **options)


def masked_cross_entropy(logits, labels, keep, mask):
    """mean_i −log softmax(mask(z, keep))_i[y_i], computed in fp32 at least (fp64 stays fp64).

    The label's own class is always kept: a masked target would make the loss infinite.
    """
    return F.cross_entropy(masked_logits(logits, labels, keep, mask), labels)


def masked_logits(logits, labels, keep, mask):
    """The logits masked_cross_entropy reads: mask(z, keep with each row's label kept), in fp32 at least."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return mask(logits, label_kept(keep, labels))


def label_kept(keep, labels):
    """keep with each row's label class kept, as the cross-entropy uses it."""
    return keep.bool() | F.one_hot(labels, keep.shape[1]).bool()


def task_keep(labels, classes_per_task, n_classes):
    """Scope `task`: keep[i, c] iff class c belongs to the task of labels[i]."""
    task_of_class = torch.arange(n_classes, device=labels.device) // classes_per_task
    return task_of_class[None, :] == (labels // classes_per_task)[:, None]


def ace_keep(labels, seen, n_classes):
    """Scope `ace` (Caccia et al. 2022): classes present in the batch plus classes never seen.

    `seen` is a bool [C] of the classes seen so far, this batch included.
    """
    present = torch.zeros(n_classes, dtype=torch.bool, device=labels.device)
    present[labels] = True
    return (present | ~seen).expand(labels.shape[0], n_classes)
