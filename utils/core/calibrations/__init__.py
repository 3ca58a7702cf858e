"""Calibration registry: corrections of recency bias applied at task ends or at evaluation, one file each in
this folder, registered with @register_calibration("name"); the base class is in base.py."""
from utils.plumbing.registry import Registry

CALIBRATIONS = Registry("calibration", "utils.core.calibrations")
register_calibration = CALIBRATIONS.register
