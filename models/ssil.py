import copy

import torch
import torch.nn.functional as F

from models import register_model
from models.base import ContinualModel
from utils.core.buffer import new_entries
from utils.core.masks.functional import at_least_fp32
from utils.plumbing.parser import positive_float


@register_model("ssil")
class SsIl(ContinualModel):
    """SS-IL (Ahn et al., ICCV 2021): separated softmax, stream rows over the current task's classes and
    replay rows over the past tasks' classes, plus task-wise distillation (T = 2) from the network as it
    was at the start of the task, one forward over [stream; replay]; a class-balanced memory of the past
    tasks, refilled at each task end.

    As hongjoon0805/SS-IL-Official `trainer/ssil.py` computes it: the two CE sums over all B + R rows, and
    per past task KL(softmax(teacher/T) ‖ softmax(student/T)) over every row (batch mean) × T², summed over
    the past tasks, weight 1; replay draws of a quarter of the stream batch (their 32 per 128). The stream's
    softmax is the mask's place (default ninf with the task scope: SS-IL's current-task softmax)."""
    NEEDS_BUFFER = True  # its replay CE is SS-IL's own softmax over past classes, not --mask_buffer's
    OWN_MEMORY_POLICY = True  # class-balanced shares refilled at every task end
    TASK_FREE_REFUSAL = ("its softmax is separated by task (the new task's classes, the past ones), it distils "
                         "task-wise from the network of the last task end and refills its buffer there")
    DEFAULT_MASK = "ninf"
    REPLAY_RATIO = 0.25

    @staticmethod
    def add_args(parser):
        parser.add_argument("--kd_temperature", type=positive_float, default=2.0,
                            help="temperature T of the task-wise distillation (default: 2.0, the authors')")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = copy.deepcopy(self.net).requires_grad_(False)  # a submodule: checkpoints carry it

    def begin_task(self, task, train_labels):
        super().begin_task(task, train_labels)
        self.teacher.load_state_dict(self.net.state_dict())

    def observe(self, images, labels):
        draw = self.draw()
        n_stream, n_old = len(labels), self.task * self.classes_per_task
        inputs = self.augment(images if draw is None else torch.cat([images, draw.images]))
        logits = self.net(inputs)
        stream_ce = self.stream_loss(logits[:n_stream], labels)
        if draw is None:
            return self.step({"ce": stream_ce}, logits, labels)
        replay_ce = F.cross_entropy(at_least_fp32(logits[n_stream:, :n_old]), draw.labels)
        rows = n_stream + len(draw.labels)
        terms = {"ce": n_stream * stream_ce / rows, "buffer_ce": len(draw.labels) * replay_ce / rows,
                 "kd": self.task_wise_distillation(logits[:, :n_old], inputs)}
        return self.step(terms, logits[:n_stream], labels)

    def task_wise_distillation(self, student, inputs):
        """Σ over past tasks of T² · mean over rows of KL(softmax(teacher/T) ‖ softmax(student/T)) on the
        task's classes."""
        temperature = self.args.kd_temperature
        self.teacher.eval()
        with torch.no_grad():
            teacher = at_least_fp32(self.teacher(inputs)[:, :student.shape[1]])
        total = 0
        student = at_least_fp32(student)
        for own, old in zip(student.split(self.classes_per_task, 1), teacher.split(self.classes_per_task, 1)):
            total = total + F.kl_div(F.log_softmax(own / temperature, 1), F.softmax(old / temperature, 1),
                                     reduction="batchmean") * temperature ** 2
        return total

    @torch.no_grad()
    def end_task(self, task, images, labels):
        """The memory keeps an equal share of every class seen: the past classes shrink to it, this task's
        classes fill the free slots."""
        if task > 0:
            self.buffer.shrink_to_share((task + 1) * self.classes_per_task)
        chosen = new_entries(labels, self.buffer.capacity - self.buffer.size)
        self.buffer.append(images[chosen], labels[chosen])
