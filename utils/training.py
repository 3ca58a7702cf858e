"""The loop: tasks → epochs → observe, then evaluation of the tasks seen so far (and of future
ones and the untrained network with --eval_future, for FWT).

The loop's whole position lives in `progress` (task, epoch, step, the epoch's order, the rows so far),
so a checkpoint written after any step continues exactly where the run stopped.
"""
import random
import signal
import time

import numpy as np
import torch
from tqdm import tqdm

from models.base import NonFiniteLoss
from utils.checkpoint import rng_states, save_checkpoint, set_rng_states
from utils.confusion import old_new_accuracy, recency_bias, task_confusion
from utils.metrics import summarize
from utils.results import accuracy, json_safe
from utils.run_identity import default_checkpoint_dir

EVAL_BATCH = 512
LOG_EVERY = 20


class NumericsError(Exception):
    """A non-finite loss or stream logits; the message says where and gives every loss term."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: a checkpoint was written at `path` (None: before the first step, nothing
    was trained); exit with `status`."""

    def __init__(self, status, path):
        super().__init__(path)
        self.status, self.path = status, path


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def evaluate(model, dataset, last_trained, future=False):
    """Class-IL and Task-IL accuracy (%, exact from counts) on each task's test split after training
    `last_trained` (−1: untrained); tasks after it are evaluated only with `future` (else None).
    Class-IL: argmax over the classes of tasks 0..max(last_trained, j); Task-IL: argmax within task j's
    classes. Also the seen tasks' Class-IL task-confusion counts and correct counts. The forward is the
    training one (precision, memory format), without autograd."""
    was_training = model.training
    model.eval()
    cpt, splits, n_tasks = dataset.N_CLASSES_PER_TASK, dataset.splits, dataset.N_TASKS
    n_evaluated = n_tasks if future else last_trained + 1
    class_il, task_il = [None] * n_tasks, [None] * n_tasks
    confusion, correct, totals = [], [], []
    for task in range(n_evaluated):
        indices = dataset.task_indices(task, train=False)
        logits = torch.cat([model(dataset.normalize(splits.test_images[chunk]))
                            for chunk in indices.split(EVAL_BATCH)])
        labels = splits.test_labels[indices]
        n_visible = (max(last_trained, task) + 1) * cpt
        predicted = logits[:, :n_visible].argmax(1)
        class_correct = (predicted == labels).sum()
        task_correct = (logits[:, task * cpt:(task + 1) * cpt].argmax(1) + task * cpt == labels).sum()
        class_il[task], task_il[task] = accuracy(class_correct, len(labels)), accuracy(task_correct, len(labels))
        if task <= last_trained:
            confusion.append(torch.bincount(predicted // cpt, minlength=last_trained + 1).tolist())
            correct.append(int(class_correct))
            totals.append(len(labels))
    model.train(was_training)
    return class_il, task_il, {"counts": confusion, "correct": correct, "totals": totals}


def task_scheduler(optimizer, args, state=None):
    """With milestones, MultiStepLR multiplying the lr by --lr_gamma at each (per task). A new task restarts
    the lr at --lr; `state` restores a checkpointed scheduler instead."""
    if state is None:
        for group in optimizer.param_groups:
            group["lr"] = args.lr
    if not args.lr_milestones:
        return None
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, args.lr_milestones, gamma=args.lr_gamma)
    if state is not None:
        scheduler.load_state_dict(state)
    return scheduler


def training_indices(model, dataset, task):
    if model.TRAINS_ON_SEEN_TASKS:
        return torch.nonzero(dataset.splits.train_labels // dataset.N_CLASSES_PER_TASK <= task).flatten()
    return dataset.task_indices(task)


class StopSignals:
    """SIGINT and SIGTERM only set a flag: the loop finishes its step, checkpoints and stops."""
    STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self):
        self.received = None  # also the state of one never entered (a sweep worker leaves signals alone)

    def __enter__(self):
        self.received = None
        self.previous = {s: signal.signal(s, self.handle) for s in self.STATUS}
        return self

    def handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


class Trainer:
    """`signals` is the StopSignals that main installed; `identity` the run id and start time that
    checkpoints carry, so that every relaunch of a run reports the same ones."""

    def __init__(self, model, dataset, args, signals, identity, log=print):
        self.model, self.dataset, self.args, self.log = model, dataset, args, log
        self.signals, self.identity = signals, identity
        self.generator = torch.Generator().manual_seed(args.seed)
        self.scheduler = None
        self.progress = None
        self.steps_run = 0

    def checkpoint(self, directory):
        """Write the state after the last finished step (training time counted up to now)."""
        self.account_time()
        state = {"model": self.model.checkpoint_state(), "generator": self.generator.get_state(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                 "rng": rng_states(), "progress": self.progress, "args": json_safe(vars(self.args)),
                 "identity": self.identity}
        path = save_checkpoint(directory, state)
        self.clock = time.perf_counter()
        return path

    def restore(self, state):
        self.model.load_checkpoint_state(state["model"])
        self.generator.set_state(state["generator"])
        set_rng_states(state["rng"])
        self.progress = state["progress"]
        for name, empty in (("global_step", 0), ("where", []), ("diagnostics", [])):  # older checkpoints
            self.progress.setdefault(name, empty)
        if self.progress["order"] is not None:
            self.progress["order"] = self.progress["order"].to(self.model.device)
        return state["scheduler"]

    def account_time(self):
        synchronize(self.model.device)
        now = time.perf_counter()
        self.progress["train_time_s"] += now - self.clock
        self.clock = now

    def run(self, resume_state=None):
        """Train task by task; returns the Class-IL and Task-IL summaries, the training time (s)
        and the number of skipped steps."""
        scheduler_state = None
        if resume_state is None:
            baseline = evaluate(self.model, self.dataset, -1, future=True)[:2] if self.args.eval_future else None
            self.progress = {"task": 0, "task_started": False, "epoch": 0, "step": 0, "order": None,
                             "class_rows": [], "task_rows": [], "baseline": baseline, "train_time_s": 0.0,
                             "global_step": 0, "where": [], "diagnostics": []}
        else:
            scheduler_state = self.restore(resume_state)
        self.stop_if_signalled()
        self.model.train()
        self.clock = time.perf_counter()
        self.writer = open_writer(self.args, self.progress["global_step"] + 1 if resume_state else None)
        try:
            while self.progress["task"] < self.dataset.N_TASKS:
                self.train_task(scheduler_state)
                scheduler_state = None
        finally:
            if self.writer is not None:
                self.writer.close()
        progress = self.progress
        baseline_class_il, baseline_task_il = progress["baseline"] or (None, None)
        accuracies = [old_new_accuracy(w["correct"], w["totals"]) for w in progress["where"]]
        return {"class_il": summarize(progress["class_rows"], baseline_class_il),
                "task_il": summarize(progress["task_rows"], baseline_task_il),
                "train_time_s": progress["train_time_s"], "skipped_steps": self.model.skipped_steps,
                "recency_bias": [recency_bias(w["counts"]) for w in progress["where"]],
                "old_accuracy": [old for old, _ in accuracies], "new_accuracy": [new for _, new in accuracies],
                "task_confusion": task_confusion(progress["where"][-1]["counts"]) if progress["where"] else None,
                "diagnostics": progress["diagnostics"]}

    def log_task(self, task, class_il, task_il, predictions):
        """After each task: every evaluated task's accuracies and the recency bias, at the current step."""
        if self.writer is None:
            return
        step = self.progress["global_step"]
        for j, (class_value, task_value) in enumerate(zip(class_il, task_il)):
            if class_value is not None:
                self.writer.add_scalar(f"acc_class_il/task{j + 1}", class_value, step)
                self.writer.add_scalar(f"acc_task_il/task{j + 1}", task_value, step)
        bias = recency_bias(predictions["counts"])
        if bias is not None:
            self.writer.add_scalar("eval/recency_bias", bias, step)
        self.writer.flush()

    def log_step(self):
        """Every --log_every steps: the window's diagnostics (one device-to-host read) and the lr."""
        step = self.progress["global_step"]
        if self.writer is None or step % self.args.log_every:
            return
        for name, value in self.model.diagnostics.read_window().items():
            self.writer.add_scalar(name, value, step)
        self.writer.add_scalar("lr", self.model.opt.param_groups[0]["lr"], step)

    def train_task(self, scheduler_state):
        progress, args, splits = self.progress, self.args, self.dataset.splits
        task, n_tasks = progress["task"], self.dataset.N_TASKS
        indices = training_indices(self.model, self.dataset, task)
        if progress["task_started"]:
            self.scheduler = task_scheduler(self.model.opt, args, scheduler_state)
        else:
            self.model.begin_task(task, splits.train_labels[indices])
            self.scheduler = task_scheduler(self.model.opt, args)
            progress.update(task_started=True, epoch=0, step=0, order=None)
        n_batches = -(-len(indices) // args.batch_size)
        bar = tqdm(total=args.n_epochs * n_batches, initial=progress["epoch"] * n_batches + progress["step"],
                   desc=f"Task {task + 1}/{n_tasks}", disable=args.non_verbose, leave=False, dynamic_ncols=True)
        while progress["epoch"] < args.n_epochs:
            if progress["order"] is None:
                progress["order"] = indices[torch.randperm(len(indices), generator=self.generator).to(indices.device)]
            batches = progress["order"].split(args.batch_size)
            while progress["step"] < len(batches):
                self.train_step(batches[progress["step"]], bar)
            if self.scheduler is not None:
                self.scheduler.step()
            progress.update(epoch=progress["epoch"] + 1, step=0, order=None)
            if args.checkpoint_dir:
                self.checkpoint(args.checkpoint_dir)
        bar.close()
        self.model.end_task(task, splits.train_images[indices], splits.train_labels[indices])
        self.account_time()
        class_il, task_il, predictions = evaluate(self.model, self.dataset, task, future=args.eval_future)
        progress["class_rows"].append(class_il)
        progress["task_rows"].append(task_il)
        progress["where"].append(predictions)
        progress["diagnostics"].append(self.model.diagnostics.read_task())
        self.log_task(task, class_il, task_il, predictions)
        progress.update(task=task + 1, task_started=False)
        self.log(f"Task {task + 1}/{n_tasks}: mean accuracy on tasks 1-{task + 1}: "
                 f"Class-IL {np.mean(class_il[:task + 1]):.2f} % | Task-IL {np.mean(task_il[:task + 1]):.2f} %")
        if args.checkpoint_dir:
            self.checkpoint(args.checkpoint_dir)
        self.clock = time.perf_counter()

    def train_step(self, batch, bar):
        progress, splits = self.progress, self.dataset.splits
        try:
            loss = self.model.observe(splits.train_images[batch], splits.train_labels[batch])
        except NonFiniteLoss as error:
            raise NumericsError(f"non-finite loss or logits at task {progress['task'] + 1}, epoch "
                                f"{progress['epoch'] + 1}, step {progress['step'] + 1}: {error} "
                                f"(lower --lr, or pass --nan_policy skip to skip such steps)") from None
        progress["step"] += 1
        progress["global_step"] += 1
        self.steps_run += 1
        self.log_step()
        if not self.args.non_verbose and progress["step"] % LOG_EVERY == 1:
            bar.set_postfix(epoch=progress["epoch"] + 1, loss=f"{loss.item():.4f}")
        bar.update()
        if self.signals.received is not None:
            bar.close()
            self.stop_if_signalled()

    def stop_if_signalled(self):
        """After a signal: checkpoint and raise Interrupted (no checkpoint before the first step)."""
        if self.signals.received is None:
            return
        path = None
        if self.steps_run:
            path = self.checkpoint(self.args.checkpoint_dir or default_checkpoint_dir(self.args))
        raise Interrupted(StopSignals.STATUS[self.signals.received], path)


def open_writer(args, purge_step):
    """A TensorBoard writer into --log_dir (None without it); a resumed run purges the events written
    after its checkpoint, so its curves continue with no duplicated or missing steps."""
    if not args.log_dir:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(args.log_dir, purge_step=purge_step)
