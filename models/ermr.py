from models import register_model
from models.er import Er


@register_model("ermr")
class ErMr(Er):
    """The masking paper's masked ER, as its authors ran it (Mammoth fork khyong/FNO-classifier,
    fno_contid/models/ermr.py): the stream batch and the buffer draw through separate forwards, and the loss
    is CE_mask(stream) + CE(buffer), the sum of the two means (er: one forward, the mean over all rows).
    The mask defaults to ninf, the fork's: each stream row keeps its own task's classes."""
    DEFAULT_MASK = "ninf"
    CONFIG_NAME = "ermr"

    def observe(self, images, labels):
        draw = self.draw()
        stream_x, *replay_x = self.augment_together(images, *([] if draw is None else [draw.images]))
        terms = {"ce": self.stream_loss(self.net(stream_x), labels)}
        if draw is not None:
            terms["buffer_ce"] = self.buffer_loss(self.net(replay_x[0]), draw.labels)
        loss = self.step(**terms)
        self.remember(images, labels)
        return loss
