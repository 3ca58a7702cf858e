"""How a model holds its mask: the registered entry of `--mask` built from the run's flags into a callable
mask(logits, keep) -> logits with an extra_loss(). The paper's masks are pure functions bound to m; a variant that
reads the model's label counts (balanced, LAS) or adds a term of its own (LODE) subclasses Mask."""
from utils.core.masks import DEFAULT_MASK_VALUE, MASKS
from utils.plumbing.parser import check_mask_value


class Mask:
    """A stream-loss variant: __call__(logits, keep) -> new logits (never in place), reading the model's
    LabelCounts (utils/core/label_counts.py) where it needs class frequencies, and extra_loss() for a term that is no
    rewrite of the logits. USES_VALUE: the mask reads m (`--mask_value`); others refuse one. SCOPE: the stream
    scope the mask is defined with (None: the model's), used unless --mask_scope is given. REPLAY: how its authors
    treat a model's buffer cross-entropy: "optional" (`--mask_buffer` on request), "always" (it is applied to the
    replay rows too: --mask_buffer is on wherever the model has a buffer cross-entropy) or "never" (a form defined
    on the stream rows alone: --mask_buffer refused). TASK_FREE_REFUSAL: why the mask is not defined on a stream
    that announces no task (the one line the command line refuses it with there; None: it runs there)."""
    USES_VALUE = False
    SCOPE = None
    REPLAY = "optional"
    TASK_FREE_REFUSAL = None

    def __init__(self, m=None, counts=None):
        self.m, self.counts = m, counts

    @classmethod
    def from_args(cls, args, counts):
        """The mask a run's flags describe (its own flags included), reading the model's `counts`."""
        return cls(m=args.mask_value, counts=counts)

    @staticmethod
    def add_args(parser):
        """Flags of this mask (none by default)."""

    def extra_loss(self, logits, labels, position):
        """A term added to the stream cross-entropy (None: none), from the unmasked stream logits and the step's
        Position (utils/core/masks/functional.py)."""
        return None

    def __call__(self, logits, keep):
        raise NotImplementedError


class Rewrite(Mask):
    """One of the pure functions of functional.py with its m bound."""

    def __init__(self, function, m):
        super().__init__(m)
        self.function = function

    def __call__(self, logits, keep):
        return self.function(logits, keep, self.m)


def as_entry(function, uses_value):
    """Give a pure mask function the class-level interface of a registered Mask."""
    function.USES_VALUE, function.SCOPE, function.REPLAY = uses_value, None, Mask.REPLAY
    function.TASK_FREE_REFUSAL = None
    function.add_args = Mask.add_args
    function.from_args = lambda args, counts: Rewrite(function, args.mask_value)


def masks_using_value():
    return [name for name in MASKS.names() if MASKS.get(name).USES_VALUE]


def resolve_mask_value(name, value):
    """m for mask `name`: the default where it uses one and none was given, None where it does not use one; a
    value given to a mask that ignores it, or not finite and not -inf, is a ValueError."""
    if not MASKS.get(name).USES_VALUE:
        if value is not None:
            raise ValueError(f"argument --mask_value: {value!r} is not allowed with mask {name}, which has no "
                             f"mask value (masks that use one: {', '.join(masks_using_value())})")
        return None
    return DEFAULT_MASK_VALUE if value is None else check_mask_value(value)


def mask_from_args(args, counts):
    """The mask of a run (--mask with its m, already resolved by the parser, and its own flags)."""
    return MASKS.get(args.mask).from_args(args, counts)


def build_mask(name, m=None, counts=None, **options):
    """The mask registered as `name` from Python, m checked and defaulted as on the command line."""
    entry, m = MASKS.get(name), resolve_mask_value(name, m)
    return entry(m=m, counts=counts, **options) if isinstance(entry, type) else Rewrite(entry, m)
