import torch
import torch.nn.functional as F

from utils.core.masks import register_mask
from utils.core.masks.base import Mask
from utils.core.masks.functional import ninf
from utils.core.tasks import task_of_classes
from utils.plumbing.parser import non_negative_float


@register_mask("lode")
class LodeMask(Mask):
    """LODE (Liang & Li, NeurIPS 2023): from task t ≥ 1 the stream CE is decoupled into ρ/t · CE([LSE(z_old),
    LSE(z_new)], new) + CE over the new classes only, "new" being every class from the current task on.

    As the authors' code (`code/models/lode_er.py`) runs it: logsumexp (not a mean) over each side, future
    classes counted as new, each term a batch mean, weight ρ/t with t the 0-based task index. Scope `new`; ρ = 0
    is −∞ masking of the old classes.

    On a stream that announces no task LODE is refused, not read anew: both of its parts are defined by the task,
    "new" as the current task's classes and the weight ρ/t by the task index (the paper decouples "the loss of the
    new task" into new-vs-old and within-new objectives; the authors' code weighs the first by the task index), and
    neither the paper nor the code gives a task-free form. A reading such as "new = the classes of the incoming
    batch" would be ER-ACE's rule (`--mask ninf --mask_scope batch`) plus a term whose weight has no t to follow.
    """
    SCOPE = "new"
    TASK_FREE_REFUSAL = ("its new classes are the current task's and its old-vs-new weight is ρ/t, t the task index "
                         "(Liang & Li 2023); no task-free form is published: use --mask ninf --mask_scope batch")

    def __init__(self, m=None, counts=None, rho=0.1):
        super().__init__(m, counts)
        self.rho = rho

    @classmethod
    def from_args(cls, args, counts):
        return cls(m=args.mask_value, counts=counts, rho=args.rho)

    @staticmethod
    def add_args(parser):
        parser.add_argument("--rho", type=non_negative_float, default=0.1,
                            help="weight ρ of the old-vs-new term, divided by the task index (default: 0.1, "
                                 "the authors' lode_er on seq-cifar10; their lode_derpp uses 0.05 at buffer 500)")

    def __call__(self, logits, keep):
        return ninf(logits, keep)

    def extra_loss(self, logits, labels, position):
        task = position.task
        if task == 0:
            return None
        old = task_of_classes(logits.shape[1], position.classes_per_task, logits.device) < task
        sides = torch.stack([logits.masked_fill(~old, float("-inf")).logsumexp(1),
                             logits.masked_fill(old, float("-inf")).logsumexp(1)], dim=1)
        return self.rho / task * F.cross_entropy(sides, torch.ones_like(labels))
