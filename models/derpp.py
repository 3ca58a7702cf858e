import torch.nn.functional as F

from models import register_model
from models.base import ContinualModel
from utils.plumbing.parser import non_negative_float


@register_model("derpp")
class Derpp(ContinualModel):
    """DER++ (Buzzega et al. 2020): DER + β·CE(f(x_b''), y_b'') on a second, independent draw.

    Task-free as DER (the paper's MNIST-360): both draws from the reservoir as soon as it holds a sample."""
    NEEDS_BUFFER = True
    BUFFER_CE = True

    @staticmethod
    def add_args(parser):
        parser.add_argument("--alpha", type=non_negative_float, default=0.1,
                            help="weight α of the logit MSE (default: 0.1, the DER paper's seq-cifar10 value)")
        parser.add_argument("--beta", type=non_negative_float, default=0.5,
                            help="weight β of the buffer CE (default: 0.5, the DER paper's seq-cifar10 value)")

    def observe(self, images, labels):
        draws = [] if self.buffer.is_empty() else [self.draw(), self.draw()]
        stream_x, *replay_x = self.augment_together(images, *(draw.images for draw in draws))
        stream_logits = self.net(stream_x)
        terms = {"ce": self.stream_loss(stream_logits, labels)}
        if draws:
            first, second = draws
            terms["mse"] = self.args.alpha * F.mse_loss(self.net(replay_x[0]), first.logits)
            terms["buffer_ce"] = self.args.beta * self.buffer_loss(self.net(replay_x[1]), second.labels)
        loss = self.step(terms, stream_logits, labels)
        self.remember(images, labels, self.logits_to_store(stream_x, stream_logits))
        return loss

    def logits_to_store(self, stream_x, stream_logits):
        """The logits the buffer keeps for the stream batch: the training forward's, before the step."""
        return stream_logits.detach()
