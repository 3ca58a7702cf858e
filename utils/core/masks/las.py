from utils.core.masks import register_mask
from utils.core.masks.base import Mask
from utils.core.masks.functional import add_prior
from utils.plumbing.parser import non_negative_float, positive_int


@register_mask("las")
class LogitAdjustedMask(Mask):
    """Logit-adjusted softmax, LAS (Huang et al., TMLR 2024): ẑ_j = z_j + τ · log π_j on every entry, π_j
    the count of label j among the rows trained on (stream and replay) over the last --window steps.

    As the authors' code (`models/er_las.py`) runs it: raw counts (the normaliser cancels in the softmax),
    the current step's rows counted before its loss, a class absent from the window at −∞; τ 1 and a
    window of 1 step by default; the replay rows' cross-entropy is adjusted too, as in their ER (--mask_buffer is
    on wherever the model has a buffer cross-entropy). `las_stream` adjusts the stream rows alone.
    """
    REPLAY = "always"

    def __init__(self, m=None, counts=None, tau=1.0, window=1):
        super().__init__(m, counts)
        self.tau = tau
        counts.keep_recent(window)

    @classmethod
    def from_args(cls, args, counts):
        return cls(m=args.mask_value, counts=counts, tau=args.tau, window=args.window)

    @staticmethod
    def add_args(parser):
        parser.add_argument("--tau", type=non_negative_float, default=1.0,
                            help="weight τ of the log label prior (default: 1.0, the authors')")
        parser.add_argument("--window", type=positive_int, default=1,
                            help="training steps whose labels make the prior (default: 1, the authors' for "
                                 "CIFAR and TinyImageNet)")

    def __call__(self, logits, keep):
        if self.tau == 0:  # no adjustment at all (0 · log 0 would be NaN)
            return logits
        return add_prior(logits, self.tau * self.counts.recent().log())
