"""The training loop's resumable state, as a checkpoint holds it: where the loop is (LoopPosition), what it has
measured so far (History), and the training clock (Stopwatch)."""
import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from utils.speed.device import synchronize


@dataclass
class LoopPosition:
    """The next step of the run: `task`, the segment of the stream (0-based: the task on a stream of tasks; the
    number of segments once training is done), whether its start ran (begin_task where tasks are announced), the
    epoch and the batch within it, the steps already taken on that batch (of --passes), the epoch's order of
    training indices (None before it is drawn), the optimisation steps taken in the whole run and the stream
    samples seen (each batch counted once, at its first step)."""
    task: int = 0
    task_started: bool = False
    epoch: int = 0
    step: int = 0
    order: Optional[Any] = None
    global_step: int = 0
    repeat: int = 0
    samples: int = 0


@dataclass
class History:
    """Per task: the Class-IL and Task-IL rows of the accuracy matrix, the predictions' counts and the
    diagnostics' means; the untrained network's rows (--eval_future), the --eval_every curve, and the head's
    (Class-IL, Task-IL) rows where the calibration classifies otherwise (NME)."""
    class_rows: list = field(default_factory=list)
    task_rows: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    baseline: Optional[list] = None
    curve: list = field(default_factory=list)
    head_rows: list = field(default_factory=list)


def loop_state(position, history, stopwatch):
    """The loop's part of a checkpoint."""
    return {"position": asdict(position), "history": asdict(history), "train_time_s": stopwatch.read()}


def restored(state):
    """(LoopPosition, History, seconds trained) of a checkpoint, also of one written when the three were one
    `progress` dict."""
    if "progress" in state:
        progress = state["progress"]
        position = {name: progress[name] for name in LoopPosition.__dataclass_fields__ if name in progress}
        history = {name: progress[name] for name in History.__dataclass_fields__}
        return LoopPosition(**position), History(**history), progress["train_time_s"]
    return LoopPosition(**state["position"]), History(**state["history"]), state["train_time_s"]


class Stopwatch:
    """The training clock: it runs from start() and is paused around evaluation and checkpointing; each read
    waits for the device's queued work first, so a GPU's time is counted where it is spent."""

    def __init__(self, device, elapsed=0.0):
        self.device, self.elapsed, self.since = device, elapsed, None

    def start(self):
        self.since = time.perf_counter()

    def read(self):
        synchronize(self.device)
        return self.elapsed + (time.perf_counter() - self.since if self.since is not None else 0.0)

    @contextlib.contextmanager
    def pause(self):
        """`with stopwatch.pause():` the time inside is not training time."""
        self.elapsed, self.since = self.read(), None
        try:
            yield
        finally:
            self.start()
