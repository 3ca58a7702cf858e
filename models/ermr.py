from models import register_model
from models.er import Er


@register_model("ermr")
class ErMr(Er):
    """The masking paper's masked ER, as its authors ran it (Mammoth fork khyong/FNO-classifier,
    fno_contid/models/ermr.py): the stream batch and the buffer draw through separate forwards, and the loss
    is CE_mask(stream) + CE(buffer), the sum of the two means (er: one forward, the mean over all rows).
    The mask defaults to ninf, the fork's: each stream row keeps its own task's classes.

    Task-free as er (the reservoir from the first batch); on a stream that announces no task its default scope,
    `task`, becomes `batch` (utils/plumbing/cli.py)."""
    DEFAULT_MASK = "ninf"
    CONFIG_NAME = "ermr"

    def observe(self, images, labels):
        return self.separate_forwards_step(images, labels, self.draw())
