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

    USES_VALUE: the mask reads m (`--mask_value`); others refuse one. SCOPE: the stream scope the mask
    is defined with (None: the model's), used unless --mask_scope is given. A stream-loss variant that
    is more than a rewrite of the logits adds its other terms in extra_loss()."""
    USES_VALUE = False
    SCOPE = None

    def __init__(self, value=None):
        self.value = resolve_mask_value(self.NAME, value)

    @classmethod
    def from_args(cls, args):
        """The mask a run's flags describe (its own flags included)."""
        return cls(value=args.mask_value)

    @staticmethod
    def add_args(parser):
        """Flags of this mask (none by default)."""

    def update_class_counts(self, counts):
        """Called at each task start with n_j, the class counts of the training distribution."""

    def begin_step(self):
        """Called before each training step."""

    def observe_labels(self, labels):
        """Called with the labels of the rows a step trains on (stream and replay), before its loss."""

    def extra_loss(self, logits, labels, task, classes_per_task):
        """A term added to the stream cross-entropy (None: none), from the unmasked stream logits."""
        return None

    def state_dict(self):
        """What a checkpoint must keep of this mask (nothing by default)."""
        return {}

    def load_state_dict(self, state):
        """Restore what state_dict() returned."""

    def __call__(self, logits, keep):
        raise NotImplementedError


def mask_from_args(args):
    """The mask of a run: --mask with --mask_value and the mask's own flags."""
    return MASKS.get(args.mask).from_args(args)


def build_mask(name, value=None, **options):
    """The mask registered as `name`, a callable mask(logits, keep) -> logits."""
    return MASKS.get(name)(value=value, **options)
