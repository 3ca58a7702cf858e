from models import register_model
from models.base import ContinualModel


@register_model("er_ace")
class ErAce(ContinualModel):
    """ER-ACE (Caccia et al. 2022): asymmetric cross-entropy. Stream CE through the mask with the
    `ace` scope (classes of the incoming batch plus classes never seen, from the second task on, or
    from the first batch when task-free), plus plain CE on a buffer draw, separate forwards.

    As in the paper's code (and Mammoth), the buffer term starts with the second task unless task-free, and the
    classifier is a cosine head (scale 10, no bias; `--head linear` for the plain one); the keep-set is "not yet
    seen" classes, not Mammoth's "from the largest seen label on".

    Task-free (self.task_free): on a stream that announces no task (--stream blurry, gradual, or a dataset without
    boundaries) the loop makes it so (start_task_free); on a stream of tasks --task_free asks for the same while the
    tasks are still begun and ended (the paper's task-free variant run on the usual benchmark). Either way the mask
    and the replay act from the first batch.
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
                            help="mask and replay from the first batch, ignoring the announced task boundaries (a "
                                 "stream that announces none, --stream blurry or gradual, does so by itself)")

    def observe(self, images, labels):
        replay = not self.buffer.is_empty() and (self.task > 0 or self.task_free)
        return self.separate_forwards_step(images, labels, self.draw() if replay else None)
