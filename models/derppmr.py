import torch

from models import register_model
from models.derpp import Derpp


@register_model("derppmr")
class DerppMr(Derpp):
    """The masking paper's masked DER++, as its authors ran it (Mammoth fork khyong/FNO-classifier,
    fno_contid/models/derppmr.py): DER++ with the ninf mask on the stream, whose buffer keeps the logits of a
    second forward of the stream batch after the optimiser step (in training mode, so BatchNorm's running
    statistics move twice per step), where derpp keeps the training forward's.

    Task-free as derpp; on a stream that announces no task its default scope, `task`, becomes `batch`."""
    DEFAULT_MASK = "ninf"
    CONFIG_NAME = "derppmr"

    @torch.no_grad()
    def logits_to_store(self, stream_x, stream_logits):
        return self.net(stream_x)
