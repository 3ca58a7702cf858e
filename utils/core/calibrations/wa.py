import torch

from utils.core.calibrations import register_calibration
from utils.core.calibrations.base import Calibration
from utils.core.tasks import task_of_classes


@register_calibration("wa")
class WeightAligning(Calibration):
    """Weight aligning, WA (Zhao et al., CVPR 2020): after each task t ≥ 1 the current task's weight rows of
    the linear head are scaled by mean ‖w_old‖ / mean ‖w_new‖, as PyCIL's weight_align does (rows of the
    tasks before t against the rows of task t; biases and future rows untouched)."""
    HEADS = ("linear",)

    @torch.no_grad()
    def end_task(self, model, task):
        if task == 0:
            return
        weight = model.net.net.classifier.weight
        tasks = task_of_classes(weight.shape[0], model.classes_per_task, weight.device)
        norms = weight.norm(dim=1)
        weight[tasks == task] *= norms[tasks < task].mean() / norms[tasks == task].mean()
