import torch

from models import register_model
from models.base import ContinualModel


@register_model("er")
class Er(ContinualModel):
    """Experience Replay (Riemer et al. 2019; Chaudhry et al. 2019) as in Mammoth: one forward over
    [stream; buffer draw], loss = mean over all rows, stream rows through the mask."""
    NEEDS_BUFFER = True
    BUFFER_CE = True

    def observe(self, images, labels):
        draw = self.draw()
        if draw is None:
            loss = self.stream_loss(self.net(self.augment(images)), labels)
        else:
            logits = self.net(self.augment(torch.cat([images, draw.images])))
            n_stream, n_buffer = len(labels), len(draw.labels)
            loss = (n_stream * self.stream_loss(logits[:n_stream], labels)
                    + n_buffer * self.buffer_loss(logits[n_stream:], draw.labels)) / (n_stream + n_buffer)
        loss = self.step(ce=loss)
        self.remember(images, labels)
        return loss
