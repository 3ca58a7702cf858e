from models import register_model
from models.ermr import ErMr


@register_model("orthermr")
class OrthErMr(ErMr):
    """ermr with the fixed non-negative orthogonal head (FNO, Kim et al. 2024), the fork's orthermr.

    Task-free as ermr: the fixed head holds every class from the start."""
    DEFAULT_HEAD = "fno"
