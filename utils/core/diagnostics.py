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


def group_gradient_mass(grad, groups_t):
    """[3]: mean over rows of the summed |grad| over each group's classes (groups_t: the groups transposed, [C, 3],
    in grad's dtype)."""
    return (grad.abs() @ groups_t).mean(0)


def group_mean_logit(logits, weights, sizes):
    """[3]: mean logit over each group's classes (weights: the groups in the logits' dtype; sizes: their sizes,
    at least 1, so an empty group gives 0)."""
    return (logits.mean(0) * weights).sum(1) / sizes


def masked_probability(masked_logits, keep):
    """Mean over rows of the softmax mass on the classes a row does not keep."""
    return (torch.softmax(masked_logits, dim=1) * ~keep).sum(1).mean()


class Sums:
    """Running sums of named values, on the device (`total`, one entry per name), and how many values each name
    got (host ints)."""

    def __init__(self, device):
        self.device = device
        self.reset(0)

    def reset(self, size):
        self.total = torch.zeros(size, device=self.device)
        self.counts = [0] * size

    def grow(self, size):
        if size > len(self.counts):
            more = size - len(self.counts)
            self.total = torch.cat([self.total, torch.zeros(more, device=self.device)])
            self.counts += [0] * more

    def add(self, index, positions, values):
        """One fp32 addition per name: total[p] + value, as a running sum of scalars would make it."""
        self.total.index_add_(0, index, values)
        for position in positions:
            self.counts[position] += 1

    def means(self, names):
        """{name: mean} of the names with values (the one device-to-host read)."""
        present = sorted((name, position) for position, name in enumerate(names) if self.counts[position])
        if not present:
            return {}
        values = torch.stack([self.total[p] / self.counts[p] for _, p in present]).tolist()
        return dict(zip((name for name, _ in present), values))

    def state(self, names):
        return {name: [self.total[p].cpu(), count] for p, (name, count) in enumerate(zip(names, self.counts)) if count}


class Diagnostics:
    """Running sums on the device of every diagnostic over the current task (`task_sums`, what the results line
    keeps) and, with `window` (--log_dir), since the last read. A step's values are gathered as they are
    measured, then added to each sum with one operation when the step ends (end_step); each name's sum is the
    same fp32 running sum as one addition per value gives. The class groups of each task are made once."""

    def __init__(self, n_classes, classes_per_task, device, window=True, every=1):
        self.n_classes, self.classes_per_task, self.device = n_classes, classes_per_task, device
        self.every, self.steps, self.active = every, 0, True
        self.names, self.position = [], {}
        self.task_sums, self.window = Sums(device), Sums(device) if window else None
        self.pending_names, self.pending_values = [], []
        self.indices, self.groups = {}, {}

    def begin_step(self):
        """Whether this step is measured: every `every`-th training step (--diagnostics_every)."""
        self.active = self.steps % self.every == 0
        self.steps += 1

    def groups_of(self, width, task, dtype, device):
        """(weights [3, C], sizes [3], weights transposed [C, 3], the current group's mask [C]) for `task`."""
        key = (width, task, dtype, str(device))
        if key not in self.groups:
            groups = class_groups(width, self.classes_per_task, task, device)
            weights = groups.to(dtype)
            self.groups[key] = (weights, weights.sum(1).clamp(min=1), groups.T.to(dtype), groups[1])
        return self.groups[key]

    def record(self, names, values):
        """The step's values of `names` (a [len(names)] tensor with no grad)."""
        self.pending_names += names
        self.pending_values.append(values.float())

    def end_step(self):
        """Add the step's values to the sums (called when the step ends, and before any read)."""
        if not self.pending_values:
            return
        for name in self.pending_names:
            if name not in self.position:
                self.position[name] = len(self.names)
                self.names.append(name)
        positions = tuple(self.position[name] for name in self.pending_names)
        if positions not in self.indices:  # a blocking copy of a new index would wait for the device
            self.indices[positions] = torch.tensor(positions).to(self.device, non_blocking=True)
        values = torch.cat(self.pending_values) if len(self.pending_values) > 1 else self.pending_values[0]
        for sums in (self.task_sums, self.window):
            if sums is not None:
                sums.grow(len(self.names))
                sums.add(self.indices[positions], positions, values)
        self.pending_names, self.pending_values = [], []

    def observe_stream(self, logits, task):
        """Record the stream logits' group means now and return the tensor the cross-entropy must read,
        whose gradient hook records the group masses during backward."""
        if not self.active:
            return logits
        weights, sizes, weights_t, _ = self.groups_of(self.n_classes, task, logits.dtype, logits.device)
        self.record(STREAM[3:6], group_mean_logit(logits.detach(), weights, sizes))
        tapped = logits.view_as(logits)
        if tapped.requires_grad:
            tapped.register_hook(lambda grad: self.record(STREAM[:3], group_gradient_mass(grad, weights_t)))
        return tapped

    def observe_masked(self, masked_logits, keep):
        """The softmax mass the masked stream logits put outside the kept classes."""
        if self.active:
            self.record(STREAM[6:], masked_probability(masked_logits.detach(), keep)[None])

    def observe_buffer(self, logits, task):
        """The tensor the buffer cross-entropy must read; its hook records the current-class mass."""
        if not self.active:
            return logits
        tapped = logits.view_as(logits)
        if tapped.requires_grad:
            current = self.groups_of(logits.shape[1], task, logits.dtype, logits.device)[3]
            tapped.register_hook(lambda grad: self.record(BUFFER, (grad.abs() * current).sum(1).mean()[None]))
        return tapped

    def record_terms(self, names, values):
        """The step's loss terms, their values stacked."""
        if self.active:
            self.record(tuple(f"loss/{name}" for name in names), values)

    def read_window(self):
        self.end_step()
        if self.window is None:
            return {}
        means = self.window.means(self.names)
        self.window.reset(len(self.names))
        return means

    def read_task(self):
        self.end_step()
        means = self.task_sums.means(self.names)
        for sums in (self.task_sums, self.window):
            if sums is not None:
                sums.reset(len(self.names))
        return means

    def state_dict(self):
        self.end_step()
        return {"steps": self.steps, **{part: {} if sums is None else sums.state(self.names)
                                        for part, sums in (("window", self.window), ("task_sums", self.task_sums))}}

    def load_state_dict(self, state):
        self.steps = state.get("steps", 0)  # a checkpoint from before --diagnostics_every measured every step
        for part in ("window", "task_sums"):
            for name in state.get(part, {}):
                if name not in self.position:
                    self.position[name] = len(self.names)
                    self.names.append(name)
        for part, sums in (("window", self.window), ("task_sums", self.task_sums)):
            if sums is None:
                continue
            sums.reset(len(self.names))
            for name, (total, count) in state.get(part, {}).items():
                sums.total[self.position[name]] = total.to(self.device)
                sums.counts[self.position[name]] = count
