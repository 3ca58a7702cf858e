import torch

from utils.masks import register_mask
from utils.masks.base import Mask
from utils.validators import non_negative_float, positive_int


@register_mask("las")
class LogitAdjustedMask(Mask):
    """Logit-adjusted softmax, LAS (Huang et al., TMLR 2024): ẑ_j = z_j + τ · log π_j on every entry, π_j
    the count of label j among the rows trained on (stream and replay) over the last --window steps.

    As the authors' code (`models/er_las.py`) runs it: raw counts (the normaliser cancels in the softmax),
    the current step's rows counted before its loss, a class absent from the window at −∞; τ 1 and a
    window of 1 step by default. With --mask_buffer the replay rows are adjusted too, as in their ER.
    """

    def __init__(self, value=None, tau=1.0, window=1):
        super().__init__(value)
        self.tau, self.window = tau, window
        self.steps = None  # [window, C]: label counts of the last `window` steps, row `position` the current one
        self.position = 0

    @classmethod
    def from_args(cls, args):
        return cls(value=args.mask_value, tau=args.tau, window=args.window)

    @staticmethod
    def add_args(parser):
        parser.add_argument("--tau", type=non_negative_float, default=1.0,
                            help="weight τ of the log label prior (default: 1.0, the authors')")
        parser.add_argument("--window", type=positive_int, default=1,
                            help="training steps whose labels make the prior (default: 1, the authors' for "
                                 "CIFAR and TinyImageNet)")

    def update_class_counts(self, counts):
        if self.steps is None:
            self.steps = torch.zeros(self.window, len(counts), device=counts.device)

    def begin_step(self):
        if self.steps is not None:
            self.position = (self.position + 1) % self.window
            self.steps[self.position] = 0

    def observe_labels(self, labels):
        self.steps = self.steps.to(labels.device)  # a checkpoint loads on the CPU
        self.steps[self.position].index_add_(0, labels, torch.ones_like(labels, dtype=self.steps.dtype))

    def state_dict(self):
        return {"steps": self.steps, "position": self.position}

    def load_state_dict(self, state):
        self.steps, self.position = state["steps"], state["position"]

    def __call__(self, logits, keep):
        if self.tau == 0:  # no adjustment at all (0 · log 0 would be NaN)
            return logits
        prior = self.steps.sum(0).log().to(logits.device)
        return logits + self.tau * prior[:logits.shape[1]]  # X-DER's buffer CE reads the past heads only
