"""The mask base class and how a mask is built from its name and m."""
from utils.masks import MASKS
from utils.validators import DEFAULT_MASK_VALUE, check_mask_value


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
