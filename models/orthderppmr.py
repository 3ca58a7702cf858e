from models import register_model
from models.derppmr import DerppMr


@register_model("orthderppmr")
class OrthDerppMr(DerppMr):
    """derppmr with the fixed non-negative orthogonal head (FNO, Kim et al. 2024), the fork's orthderppmr.

    Task-free as derppmr: the fixed head holds every class from the start."""
    DEFAULT_HEAD = "fno"
