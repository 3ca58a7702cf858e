import torch

from utils.core.calibrations import register_calibration
from utils.core.calibrations.base import Calibration
from utils.plumbing.parser import non_negative_float


@register_calibration("posthoc_la")
class PostHocLogitAdjustment(Calibration):
    """Post-hoc logit adjustment (Menon et al., ICLR 2021): the evaluation reads z_j − τ · log π_j, π the
    label frequencies of every row the model trained on so far (stream and replay); a class never trained
    on (π = 0) is never predicted. Training is untouched."""

    def __init__(self, tau=1.0):
        self.tau = tau

    @classmethod
    def from_args(cls, args):
        return cls(tau=args.la_tau)

    @staticmethod
    def add_args(parser):
        parser.add_argument("--la_tau", type=non_negative_float, default=1.0,
                            help="weight τ of the subtracted log prior (default: 1.0, Menon et al.'s)")

    def adjust(self, logits, model):
        counts = model.counts.total
        if counts.sum() == 0:  # the untrained network (--eval_future's baseline)
            return logits
        log_prior = (counts / counts.sum()).log()
        return torch.where(counts > 0, logits - self.tau * log_prior, torch.full_like(logits, float("-inf")))
