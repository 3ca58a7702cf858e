"""The loop: segments of the stream → epochs → batches → --passes steps (observe), then evaluation of the tasks
seen so far (and of future ones and the untrained network with --eval_future, for FWT).

On a stream of tasks (utils/core/streams.py) a segment is a task, reshuffled every epoch, begun and ended with the
model's begin_task / end_task / calibrate. On a stream that announces no task (--stream blurry or gradual, or a
dataset without boundaries) the segments are trained in the stream's order and the model hears of none of them
(ContinualModel.start_task_free); each segment stands for a task of the dataset (streams.nominal_tasks), whose row
of the accuracy matrix is evaluated after its last segment, on the dataset's task split.

With --passes K each incoming batch takes K optimisation steps (a fresh buffer draw each) and enters the buffer
once, at the last: the online protocol of i-Blurry (Koh et al. 2022; naver-ai/i-Blurry methods/er_baseline.py,
`online_iter` iterations of online_train on one stream batch, update_memory after them) and of the online-CL survey
(Soutif-Cormerais et al. 2023; AlbinSou/ocl_survey, config/strategy/method_defaults.yaml: train_epochs 3 on each
mini-batch experience of OnlineCLScenario, the buffer updated once per experience). Mammoth has no such option.

The loop's state is its position (segment, epoch, batch, pass, the epoch's order), its history (the rows so far)
and the training clock (utils/core/loop_state.py), so a checkpoint written after any step continues exactly where
the run stopped.
"""
import numpy as np
import torch
from tqdm import tqdm

from models.base import NonFiniteLoss
from utils.core.evaluation import evaluate, evaluate_seen, evaluation_subsets
from utils.core.loop_state import History, LoopPosition, Stopwatch, loop_state, restored
from utils.core.metrics import old_new_accuracy, recency_bias, summarize, task_confusion
from utils.core.stability import summarize_stability
from utils.core.streams import build_stream, nominal_tasks
from utils.core.tasks import task_of
from utils.plumbing.checkpoint import rng_states, save_checkpoint, set_rng_states
from utils.plumbing.console import bars_allowed
from utils.plumbing.event_log import EventLog
from utils.plumbing.identity import default_checkpoint_dir
from utils.plumbing.record import json_safe
from utils.plumbing.signals import Interrupted, StopSignals

PROGRESS_EVERY = 20  # steps between two updates of the progress bar's loss and two non-finite checks


class NumericsError(Exception):
    """A non-finite loss or stream logits; the message says where and gives every loss term."""


def head_accuracy(head_rows):
    """{"head": {"class_il": ..., "task_il": ...}} of the head's rows, where a calibration classified otherwise."""
    if not head_rows:
        return None
    return {"head": {"class_il": summarize([row[0] for row in head_rows], None),
                     "task_il": summarize([row[1] for row in head_rows], None)}}


def task_data(model, splits, indices):
    """(images, labels, indices into them) the task's steps read: the training split at the task's indices, or,
    where the model joins data of its own to the task (ContinualModel.joined_training_data), the task's samples
    followed by that data, indexed 0..n−1 (the epoch's order is then a permutation of both together)."""
    joined = model.joined_training_data()
    if joined is None:
        return splits.train_images, splits.train_labels, indices
    images = torch.cat([splits.train_images[indices], joined[0].to(splits.train_images.device)])
    labels = torch.cat([splits.train_labels[indices], joined[1].to(splits.train_labels.device)])
    return images, labels, torch.arange(len(labels), device=indices.device)


def training_indices(model, dataset, task):
    if model.TRAINS_ON_SEEN_TASKS:
        return torch.nonzero(task_of(dataset.splits.train_labels, dataset.N_CLASSES_PER_TASK) <= task).flatten()
    return dataset.task_indices(task)


class Trainer:
    """`signals` is the StopSignals that main installed (a sweep worker's never receives one); `identity`
    the run id and start time that checkpoints carry, so that every relaunch of a run reports the same ones."""

    def __init__(self, model, dataset, args, signals, identity, log=print):
        self.model, self.dataset, self.args, self.log = model, dataset, args, log
        self.signals, self.identity = signals, identity
        self.generator = torch.Generator().manual_seed(args.seed)
        self.scheduler = None
        self.position, self.history = LoopPosition(), History()
        self.stopwatch = Stopwatch(model.device)
        self.steps_run = 0

    def checkpoint(self, directory):
        """Write the state after the last finished step (training time counted up to now, the writing not)."""
        with self.stopwatch.pause():
            state = {"model": self.model.checkpoint_state(), "generator": self.generator.get_state(),
                     "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                     "rng": rng_states(), **loop_state(self.position, self.history, self.stopwatch),
                     "args": json_safe(vars(self.args)), "identity": self.identity}
            return save_checkpoint(directory, state)

    def restore(self, state):
        self.model.load_checkpoint_state(state["model"])
        self.generator.set_state(state["generator"])
        set_rng_states(state["rng"])
        self.position, self.history, trained = restored(state)
        self.stopwatch = Stopwatch(self.model.device, trained)
        if self.position.order is not None:
            self.position.order = self.position.order.to(self.model.device)
        return state["scheduler"]

    def run(self, resume_state=None):
        """Train segment by segment; returns the Class-IL and Task-IL summaries, the training time (s)
        and the number of skipped steps."""
        scheduler_state = None
        self.stream = build_stream(self.args, self.dataset)
        segments = self.stream.segments
        self.nominal = nominal_tasks(self.dataset.N_TASKS if segments is None else len(segments), self.dataset.N_TASKS)
        if resume_state is None:
            if self.args.eval_future:
                self.history.baseline = evaluate(self.model, self.dataset, -1, future=True)[:2]
        else:
            scheduler_state = self.restore(resume_state)
        if not self.stream.announced:
            self.model.start_task_free()
        self.stop_if_signalled()
        self.subsets = evaluation_subsets(self.dataset, self.args.eval_subset, self.args.seed) \
            if self.args.eval_every else None
        self.model.train()
        self.stopwatch.start()
        self.events = EventLog(self.args, self.position.global_step + 1 if resume_state else None)
        try:
            while self.position.task < len(self.nominal):
                self.train_task(scheduler_state)
                scheduler_state = None
        finally:
            self.events.close()
        history, predictions = self.history, self.history.predictions
        baseline_class_il, baseline_task_il = history.baseline or (None, None)
        accuracies = [old_new_accuracy(p["correct"], p["totals"]) for p in predictions]
        return {"class_il": summarize(history.class_rows, baseline_class_il),
                "task_il": summarize(history.task_rows, baseline_task_il),
                "train_time_s": self.stopwatch.read(), "skipped_steps": self.model.skipped_steps,
                "recency_bias": [recency_bias(p["counts"]) for p in predictions],
                "old_accuracy": [old for old, _ in accuracies], "new_accuracy": [new for _, new in accuracies],
                "task_confusion": task_confusion(predictions[-1]["counts"]) if predictions else None,
                "diagnostics": history.diagnostics, "online_accuracy": self.model.online_accuracy(),
                "calibration_fit": self.model.calibration.summary() or head_accuracy(history.head_rows),
                "eval_curve": history.curve or None,
                **summarize_stability(history.curve, self.dataset.N_TASKS, history.class_rows[-1])}

    def segment_indices(self, segment, task):
        """The training indices of a segment: the task's (reshuffled every epoch), or the stream's, in its order."""
        if self.stream.segments is not None:
            return self.stream.segments[segment]
        return self.model.calibration.training_indices(training_indices(self.model, self.dataset, task),
                                                       self.dataset, task, self.args.seed)

    def train_task(self, scheduler_state):
        position, history, args, splits = self.position, self.history, self.args, self.dataset.splits
        segment, announced = position.task, self.stream.announced
        task, n_tasks = self.nominal[segment], self.dataset.N_TASKS
        self.model.measured_task = task
        indices = self.segment_indices(segment, task)
        if position.task_started:
            self.scheduler = task_scheduler(self.model.opt, args, scheduler_state)
        else:
            if announced:
                self.model.begin_task(task, splits.train_labels[indices])
                self.model.prepare_task(task, splits.train_images[indices], splits.train_labels[indices])
            self.scheduler = task_scheduler(self.model.opt, args)
            position.task_started, position.epoch, position.step, position.order = True, 0, 0, None
        self.images, self.labels, order = task_data(self.model, splits, indices)
        n_batches = -(-len(order) // args.batch_size)
        name = f"Task {task + 1}/{n_tasks}" if announced else f"Segment {segment + 1}/{len(self.nominal)}"
        bar = tqdm(total=args.n_epochs * n_batches, initial=position.epoch * n_batches + position.step,
                   desc=name, disable=args.quiet or not bars_allowed(), leave=False, dynamic_ncols=True)
        while position.epoch < args.n_epochs:
            if position.order is None and self.stream.segments is not None:
                position.order = order
            elif position.order is None:
                position.order = order[torch.randperm(len(order), generator=self.generator).to(order.device)]
            batches = position.order.split(args.batch_size)
            self.window_start = self.steps_into_epoch()
            while position.step < len(batches):
                self.train_step(batches[position.step], bar)
            self.check_finite()
            if self.scheduler is not None:
                self.scheduler.step()
            position.epoch, position.step, position.order = position.epoch + 1, 0, None
            if args.checkpoint_dir:
                self.checkpoint(args.checkpoint_dir)
        bar.close()
        if announced:
            self.model.end_task(task, splits.train_images[indices], splits.train_labels[indices])
            self.model.calibrate(task)
        self.curve_point()  # the last point before the switch to the next segment
        position.task_started = False
        if segment + 1 < len(self.nominal) and self.nominal[segment + 1] == task:
            position.task += 1  # the task's row waits for its last segment
            if args.checkpoint_dir:
                self.checkpoint(args.checkpoint_dir)
            return
        with self.stopwatch.pause():  # the evaluation is not training time, checkpoints or not
            class_il, task_il, predictions = evaluate(self.model, self.dataset, task, future=args.eval_future)
        if self.model.calibration.REPLACES_HEAD:
            with self.stopwatch.pause(), self.model.head_only():
                history.head_rows.append(evaluate(self.model, self.dataset, task)[:2])
        history.class_rows.append(class_il)
        history.task_rows.append(task_il)
        history.predictions.append(predictions)
        history.diagnostics.append(self.model.diagnostics.read_task())
        self.events.task(position.global_step, class_il, task_il, predictions)
        position.task += 1
        self.log(f"{name}: mean accuracy on tasks 1-{task + 1}: "
                 f"Class-IL {np.mean(class_il[:task + 1]):.2f} % | Task-IL {np.mean(task_il[:task + 1]):.2f} %")
        if args.checkpoint_dir:
            self.checkpoint(args.checkpoint_dir)

    def train_step(self, batch, bar):
        """--passes optimisation steps on one stream batch, from the one a resumed run stopped before; the batch's
        samples count as seen from its first step on."""
        position, passes = self.position, self.args.passes
        images, labels = self.images[batch], self.labels[batch]
        done = False
        while not done:
            first, done = position.repeat == 0, position.repeat == passes - 1
            loss = self.model.train_step(images, labels, first, done)
            position.samples += len(labels) if first else 0
            position.repeat = 0 if done else position.repeat + 1
            position.step += done
            position.global_step += 1
            self.steps_run += 1
            self.events.step(position.global_step, self.model)
            if self.args.eval_every and position.global_step % self.args.eval_every == 0:
                self.curve_point()
            if done and position.step % PROGRESS_EVERY == 0:
                self.check_finite()
                if not self.args.quiet:
                    bar.set_postfix(epoch=position.epoch + 1, loss=f"{loss.item():.4f}")
            bar.update(int(done))
            if self.signals.received is not None:
                bar.close()
                self.stop_if_signalled()

    def steps_into_epoch(self):
        """Optimisation steps taken in the current epoch (--passes per finished batch)."""
        return self.position.step * self.args.passes + self.position.repeat

    def curve_point(self):
        """With --eval_every, the seen tasks' accuracy on the fixed subsets now (its time is not training
        time)."""
        if not self.args.eval_every:
            return
        position, curve = self.position, self.history.curve
        task = self.nominal[position.task]
        with self.stopwatch.pause():
            class_il, task_il = evaluate_seen(self.model, self.dataset, task, self.subsets)
        point = {"step": position.global_step, "task": task, "epoch": min(position.epoch, self.args.n_epochs - 1),
                 "samples": position.samples, "class_il": class_il, "task_il": task_il}
        if curve and curve[-1]["step"] == point["step"]:
            curve[-1] = point  # a task's last step: the point after end_task and the correction wins
        else:
            curve.append(point)
        self.events.curve(position.global_step, class_il)

    def check_finite(self):
        """The model's non-finite steps since the last check (one host read; called every PROGRESS_EVERY
        steps and at epoch ends, never per step): under --nan_policy stop, NumericsError naming the first."""
        position, passes = self.position, self.args.passes
        try:
            self.model.read_finite()
        except NonFiniteLoss as error:
            batch, repeat = divmod(self.window_start + error.index, passes)
            where = f"step {batch + 1}" + (f", pass {repeat + 1}" if passes > 1 else "")
            raise NumericsError(f"non-finite loss or logits at task {position.task + 1}, epoch "
                                f"{position.epoch + 1}, {where}: {error} "
                                f"(lower --lr, or pass --nan_policy skip to skip such steps)") from None
        self.window_start = self.steps_into_epoch()

    def stop_if_signalled(self):
        """After a signal: checkpoint and raise Interrupted (no checkpoint before the first step)."""
        if self.signals.received is None:
            return
        path = None
        if self.steps_run:
            self.check_finite()
            path = self.checkpoint(self.args.checkpoint_dir or default_checkpoint_dir(self.args))
        raise Interrupted(StopSignals.STATUS[self.signals.received], path)


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
