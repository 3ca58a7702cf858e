from utils.core.calibrations import register_calibration
from utils.core.calibrations.base import Calibration


@register_calibration("none")
class NoCalibration(Calibration):
    """No correction: the evaluation reads the network's logits."""
