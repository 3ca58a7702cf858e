"""The one counter of labels a model keeps, on the device, for the masks and corrections that read class
frequencies: the rows each training step trains on (stream and replay) in all, over the last steps, and the class
counts of the current task's training distribution, or on a stream that announces no task the running count."""
import torch

NEVER = torch.iinfo(torch.int64).min  # the last step of a class never streamed: before every window

class LabelCounts:
    """`total` [C]: rows trained on per class since the start (post-hoc logit adjustment; a class is seen once its
    count is positive). `recent()` [C]: the rows of the last `window` steps, the current one included (LAS), kept
    as a ring of per-step counts once a mask asks for it with `keep_recent(window)`. `streamed_within(window)`
    [C] bool: the classes with a stream row in the last `window` steps, the current one included (the `recent`
    scope), from the last step each class was streamed, kept once asked for with `keep_streamed()` (the ring counts
    replay rows too, which would bring back every class in the buffer). `distribution` [C]: n_j of the
    current task's training distribution, its labels and the buffer's at the task start (balanced softmax); on a
    stream that announces no task (follow_total) `total` itself, the rows trained on so far, stream and replay.
    `total` is the model's registered buffer, so it travels in the model's state dict."""

    def __init__(self, total):
        self.total = total
        self.window = 0
        self.steps = None  # [window, C]: the per-step counts, row `position` the current step's
        self.position = 0
        self.step = 0  # training steps begun
        self.last_streamed = None  # [C] int64: the last step with a stream row of each class (NEVER: none yet)
        self.distribution = None
        self.ones = {}  # batch size -> a vector of ones to count with

    def keep_recent(self, window):
        self.window = max(self.window, window)

    def keep_streamed(self):
        if self.last_streamed is None:
            self.last_streamed = torch.full(self.total.shape, NEVER, dtype=torch.int64, device=self.total.device)

    def begin_task(self, distribution):
        self.distribution = distribution
        self.start_window()

    def follow_total(self):
        """No task will start: the training distribution is the running count (this step's rows included), and the
        window of recent steps starts now."""
        self.distribution = self.total
        self.start_window()

    def start_window(self):
        if self.window and self.steps is None:
            self.steps = torch.zeros(self.window, len(self.total), device=self.total.device)

    def begin_step(self):
        self.step += 1
        if self.steps is not None:
            self.position = (self.position + 1) % self.window
            self.steps[self.position] = 0

    def add(self, labels, stream=False):
        """Count the labels of rows the current step trains on (`stream`: the rows of the incoming batch)."""
        ones = self.ones.get(len(labels))
        if ones is None:
            ones = self.ones[len(labels)] = torch.ones(len(labels), dtype=self.total.dtype, device=self.total.device)
        self.total.index_add_(0, labels, ones)
        if self.steps is not None:
            self.steps[self.position].index_add_(0, labels, ones)
        if stream and self.last_streamed is not None:
            self.last_streamed.index_fill_(0, labels, self.step)

    def recent(self):
        return self.steps.sum(0)

    def streamed_within(self, window):
        return self.last_streamed > self.step - window

    def seen(self):
        """Bool [C]: the classes trained on so far."""
        return self.total > 0

    def state_dict(self):
        return {"steps": self.steps, "position": self.position, "distribution": self.distribution,
                "step": self.step, "last_streamed": self.last_streamed}

    def load_state_dict(self, state):
        device = self.total.device
        self.steps = None if state["steps"] is None else state["steps"].to(device)
        self.distribution = None if state["distribution"] is None else state["distribution"].to(device)
        self.position = state["position"]
        self.step = state.get("step", 0)  # a checkpoint written before the recent scope has neither
        if state.get("last_streamed") is not None:
            self.last_streamed = state["last_streamed"].to(device)
