from models import register_model
from models.base import ContinualModel


@register_model("sgd")
class Sgd(ContinualModel):
    """Fine-tuning with the masked stream CE only: the lower bound."""

    def observe(self, images, labels):
        logits = self.net(self.augment(images))
        return self.step({"ce": self.stream_loss(logits, labels)}, logits, labels)
