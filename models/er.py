import torch

from models import register_model
from models.base import ContinualModel


@register_model("er")
class Er(ContinualModel):
    """Experience Replay (Riemer et al. 2019; Chaudhry et al. 2019) as in Mammoth: one forward over
    [stream; buffer draw], loss = mean over all rows, stream rows through the mask.

    Task-free: the reservoir takes every batch and is drawn from as soon as it holds a sample; nothing is done at a
    task start or end."""
    NEEDS_BUFFER = True
    BUFFER_CE = True

    def observe(self, images, labels):
        draw = self.draw()
        if draw is None:
            logits = self.net(self.augment(images))
            terms = {"ce": self.stream_loss(logits, labels)}
        else:
            logits = self.net(self.augment(torch.cat([images, draw.images])))
            n_stream, n_buffer = len(labels), len(draw.labels)
            rows = n_stream + n_buffer
            terms = {"ce": n_stream * self.stream_loss(logits[:n_stream], labels) / rows,
                     "buffer_ce": n_buffer * self.buffer_loss(logits[n_stream:], draw.labels) / rows}
        loss = self.step(terms, logits[:len(labels)], labels)
        self.remember(images, labels)
        return loss
