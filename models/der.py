import torch.nn.functional as F

from models import register_model
from models.base import ContinualModel
from utils.plumbing.parser import non_negative_float


@register_model("der")
class Der(ContinualModel):
    """Dark Experience Replay (Buzzega et al. 2020): CE_mask(stream) + α·MSE(f(x_b), z_b), where
    z_b are the raw logits stored when x_b entered the buffer. Separate forwards, as the paper's code.

    Task-free, as the paper runs it on MNIST-360 (§5): the reservoir and its logits fill from every batch and are
    replayed as soon as they hold a sample; nothing is done at a task start or end."""
    NEEDS_BUFFER = True

    @staticmethod
    def add_args(parser):
        parser.add_argument("--alpha", type=non_negative_float, default=0.3,
                            help="weight α of the logit MSE (default: 0.3, the DER paper's seq-cifar10 value)")

    def observe(self, images, labels):
        draw = self.draw()
        stream_x, *replay_x = self.augment_together(images, *([] if draw is None else [draw.images]))
        stream_logits = self.net(stream_x)
        terms = {"ce": self.stream_loss(stream_logits, labels)}
        if draw is not None:
            terms["mse"] = self.args.alpha * F.mse_loss(self.net(replay_x[0]), draw.logits)
        loss = self.step(terms, stream_logits, labels)
        self.remember(images, labels, stream_logits.detach())
        return loss
