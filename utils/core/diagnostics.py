"""Per-step diagnostics of what the mask does to the stream cross-entropy, measured from the gradient
autograd delivers to the stream logits (a tensor hook on the cross-entropy's input, so loss weights and
masks are included), accumulated on the device and read to the host only when asked.

Class groups relative to the current task t: old (tasks < t), current (task t), future (tasks > t).
grad/<group>: mean over stream rows of Σ_{j in group} |∂L/∂z_j|; logit/<group>: mean stream logit over
the group's classes; prob/masked: mean over rows of the softmax mass the masked logits put outside the
kept classes (e^m shares for `general`, 0 for `ninf`); grad_buffer/current: the same gradient mass on
the current task's classes from the buffer cross-entropy rows (replay's counter-push); loss/<term>."""
import torch

from utils.core.tasks import task_of_classes

STREAM = ("grad/old", "grad/current", "grad/future", "logit/old", "logit/current", "logit/future", "prob/masked")
BUFFER = ("grad_buffer/current",)


def class_groups(n_classes, classes_per_task, task, device):
    """Bool [3, C]: old, current, future classes for `task`."""
    task_of_class = task_of_classes(n_classes, classes_per_task, device)
    return torch.stack([task_of_class < task, task_of_class == task, task_of_class > task])


def group_gradient_mass(grad, groups):
    """[3]: mean over rows of the summed |grad| over each group's classes."""
    return (grad.abs() @ groups.T.to(grad.dtype)).mean(0)


def group_mean_logit(logits, groups):
    """[3]: mean logit over each group's classes (0 for an empty group)."""
    weights = groups.to(logits.dtype)
    return (logits.mean(0) * weights).sum(1) / weights.sum(1).clamp(min=1)


def masked_probability(masked_logits, keep):
    """Mean over rows of the softmax mass on the classes a row does not keep."""
    return (torch.softmax(masked_logits, dim=1) * ~keep).sum(1).mean()


class Diagnostics:
    """Running sums on the device of every diagnostic, since the last read (`window`) and over the
    current task (`task_sums`)."""

    def __init__(self, n_classes, classes_per_task, device):
        self.n_classes, self.classes_per_task, self.device = n_classes, classes_per_task, device
        self.window, self.task_sums = {}, {}

    def add(self, name, value):
        value = value.detach().float()
        for sums in (self.window, self.task_sums):
            total, count = sums.get(name, (torch.zeros((), device=self.device), 0))
            sums[name] = (total + value, count + 1)

    def observe_stream(self, logits, task):
        """Record the stream logits' group means now and return the tensor the cross-entropy must read,
        whose gradient hook records the group masses during backward."""
        groups = class_groups(self.n_classes, self.classes_per_task, task, logits.device)
        for name, value in zip(STREAM[3:6], group_mean_logit(logits.detach(), groups)):
            self.add(name, value)
        tapped = logits.view_as(logits)
        if tapped.requires_grad:
            tapped.register_hook(lambda grad: self.record_stream_grad(grad, groups))
        return tapped

    def observe_masked(self, masked_logits, keep):
        """The softmax mass the masked stream logits put outside the kept classes."""
        self.add("prob/masked", masked_probability(masked_logits.detach(), keep))

    def record_stream_grad(self, grad, groups):
        for name, value in zip(STREAM[:3], group_gradient_mass(grad, groups)):
            self.add(name, value)

    def observe_buffer(self, logits, task):
        """The tensor the buffer cross-entropy must read; its hook records the current-class mass."""
        tapped = logits.view_as(logits)
        if tapped.requires_grad:
            current = class_groups(logits.shape[1], self.classes_per_task, task, logits.device)[1]
            tapped.register_hook(lambda grad: self.add(BUFFER[0], (grad.abs() * current).sum(1).mean()))
        return tapped

    def add_terms(self, terms):
        for name, value in terms.items():
            self.add(f"loss/{name}", value)

    @staticmethod
    def means(sums):
        """Host floats of the means (the one device-to-host read)."""
        if not sums:
            return {}
        names = sorted(sums)
        values = torch.stack([sums[n][0] / sums[n][1] for n in names]).tolist()
        return dict(zip(names, values))

    def read_window(self):
        means, self.window = self.means(self.window), {}
        return means

    def read_task(self):
        means, self.task_sums, self.window = self.means(self.task_sums), {}, {}
        return means

    def state_dict(self):
        return {part: {n: [t.cpu(), c] for n, (t, c) in getattr(self, part).items()}
                for part in ("window", "task_sums")}

    def load_state_dict(self, state):
        for part in ("window", "task_sums"):
            setattr(self, part, {n: (t.to(self.device), c) for n, (t, c) in state.get(part, {}).items()})
