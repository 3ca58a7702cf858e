"""Calibration registry: corrections of recency bias applied at task ends or at evaluation, one file each in
this folder, registered with @register_calibration("name"); the base class is in base.py."""
from utils.registry import Registry

CALIBRATIONS = Registry("calibration", "utils.calibrations")
register_calibration = CALIBRATIONS.register
