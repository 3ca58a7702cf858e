from models import register_model
from models.base import ContinualModel


@register_model("er_ace")
class ErAce(ContinualModel):
    """ER-ACE (Caccia et al. 2022): asymmetric cross-entropy. Stream CE through the mask with the
    `ace` scope (classes of the incoming batch plus classes never seen, from the second task on, or
    from the first batch with --task_free), plus plain CE on a buffer draw, separate forwards.

    As in the paper's code (and Mammoth), the buffer term starts with the second task unless
    --task_free, and the classifier is a cosine head (scale 10, no bias; `--head linear` for the
    plain one); the keep-set is "not yet seen" classes, not Mammoth's "from the largest seen label on".
    """
    NEEDS_BUFFER = True
    BUFFER_CE = True
    DEFAULT_MASK = "ninf"
    DEFAULT_SCOPE = "ace"
    DEFAULT_HEAD = "cosine"

    def __init__(self, backbone, args, dataset, device):
        super().__init__(backbone, args, dataset, device)
        self.task_free = args.task_free

    @staticmethod
    def add_args(parser):
        parser.add_argument("--task_free", action="store_true",
                            help="mask and replay from the first batch (no task boundaries used)")

    def observe(self, images, labels):
        replay = not self.buffer.is_empty() and (self.task > 0 or self.args.task_free)
        return self.separate_forwards_step(images, labels, self.draw() if replay else None)
