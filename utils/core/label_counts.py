"""The one counter of labels a model keeps, on the device, for the masks and corrections that read class
frequencies: the rows each training step trains on (stream and replay) in all, over the last steps, and the class
counts of the current task's training distribution."""
import torch


class LabelCounts:
    """`total` [C]: rows trained on per class since the start (post-hoc logit adjustment; a class is seen once its
    count is positive). `recent()` [C]: the rows of the last `window` steps, the current one included (LAS), kept
    as a ring of per-step counts once a mask asks for it with `keep_recent(window)`. `distribution` [C]: n_j of the
    current task's training distribution, its labels and the buffer's at the task start (balanced softmax).
    `total` is the model's registered buffer, so it travels in the model's state dict."""

    def __init__(self, total):
        self.total = total
        self.window = 0
        self.steps = None  # [window, C]: the per-step counts, row `position` the current step's
        self.position = 0
        self.distribution = None
        self.ones = {}  # batch size -> a vector of ones to count with

    def keep_recent(self, window):
        self.window = max(self.window, window)

    def begin_task(self, distribution):
        self.distribution = distribution
        if self.window and self.steps is None:
            self.steps = torch.zeros(self.window, len(distribution), device=distribution.device)

    def begin_step(self):
        if self.steps is not None:
            self.position = (self.position + 1) % self.window
            self.steps[self.position] = 0

    def add(self, labels):
        """Count the labels of rows the current step trains on."""
        ones = self.ones.get(len(labels))
        if ones is None:
            ones = self.ones[len(labels)] = torch.ones(len(labels), dtype=self.total.dtype, device=self.total.device)
        self.total.index_add_(0, labels, ones)
        if self.steps is not None:
            self.steps[self.position].index_add_(0, labels, ones)

    def recent(self):
        return self.steps.sum(0)

    def seen(self):
        """Bool [C]: the classes trained on so far."""
        return self.total > 0

    def state_dict(self):
        return {"steps": self.steps, "position": self.position, "distribution": self.distribution}

    def load_state_dict(self, state):
        device = self.total.device
        self.steps = None if state["steps"] is None else state["steps"].to(device)
        self.distribution = None if state["distribution"] is None else state["distribution"].to(device)
        self.position = state["position"]
