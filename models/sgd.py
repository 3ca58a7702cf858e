from models import register_model
from models.base import ContinualModel


@register_model("sgd")
class Sgd(ContinualModel):
    """Fine-tuning with the masked stream CE only: the lower bound.

    Task-free: nothing of it depends on a task; it trains on the stream as it comes."""

    def observe(self, images, labels):
        logits = self.net(self.augment(images))
        return self.step({"ce": self.stream_loss(logits, labels)}, logits, labels)
