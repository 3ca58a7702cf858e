"""ContinualModel: the network, its optimizer, the softmax mask and the replay buffer."""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from backbone.heads import with_head
from backbone.precision import PrecisionWrapper
from utils.core.balanced_buffer import BalancedBuffer
from utils.core.buffer import Buffer
from utils.core.calibrations import CALIBRATIONS
from utils.core.diagnostics import Diagnostics
from utils.core.label_counts import LabelCounts
from utils.core.masks.base import mask_from_args
from utils.core.masks.functional import (
    BUFFER_SCOPES,
    SCOPES,
    Position,
    at_least_fp32,
    label_kept,
    masked_cross_entropy,
    masked_logits,
)
from utils.speed.finite_watch import FiniteWatch


def measured_task(model):
    """The task the online accuracy and the diagnostics count a step in: the announced one, or where the model acts
    task-free the task the loop's segment stands for (utils/core/streams.py nominal_tasks; the same on a stream of
    tasks)."""
    return model.measured_task if model.task_free else model.task


class NonFiniteLoss(Exception):
    """Steps whose loss or stream logits were not finite: `index` is the first one's place among the steps
    since the last read; the message gives each of its loss terms."""

    def __init__(self, index, terms):
        super().__init__(", ".join(f"{name}={value:.6g}" for name, value in terms.items()))
        self.index = index


class ContinualModel(nn.Module):
    """Subclasses implement observe(images, labels) -> detached loss; images are uint8 stream
    images, augmented here together with any replay batch (one kornia call).

    NEEDS_BUFFER: --buffer_size must be > 0. TRAINS_ON_SEEN_TASKS: each task trains on the data
    of every task seen so far (joint). DEFAULT_MASK / DEFAULT_SCOPE / DEFAULT_HEAD reproduce the
    original paper (the head replaces the backbone's classifier: backbone/heads.py). CONFIG_NAME: the
    model whose --config best entries this one takes (None: its own name). TASK_FREE_REFUSAL: why the model cannot
    run on a stream that announces no task (one line the command line refuses it with; None: it runs task-free,
    start_task_free()).
    """
    NEEDS_BUFFER = False
    REPLAY_RATIO = None  # default --minibatch_size as a fraction of --batch_size (None: as large as allowed)
    BUFFER_CE = False  # has a cross-entropy on buffer rows (what --mask_buffer masks)
    TRAINS_ON_SEEN_TASKS = False
    DEFAULT_MASK = "none"
    DEFAULT_SCOPE = "task"
    DEFAULT_HEAD = "linear"
    CONFIG_NAME = None
    OWN_MEMORY_POLICY = False  # decides itself what its buffer keeps (herding, greedy balance, task-end shares)
    JOINS_EXEMPLARS = False  # the buffer's exemplars join each task's training data (joined_training_data)
    OWN_CLASSIFIER = False  # evaluates with a classifier of its own, not the head (iCaRL's NME): no calibration
    TASK_FREE_REFUSAL = None

    def __init__(self, backbone, args, dataset, device):
        super().__init__()
        backbone = with_head(backbone, args.head)
        self.net = PrecisionWrapper(backbone.to(device), device, args.amp, args.channels_last, args.compile)
        self.args = args
        self.device = torch.device(device)
        self.augment = dataset.augment
        self.normalize = dataset.normalize
        self.n_classes = dataset.n_classes
        self.classes_per_task = dataset.N_CLASSES_PER_TASK
        self.n_tasks = dataset.N_TASKS
        self.strong_augment = dataset.augment_strong
        self.register_buffer("trained_label_counts", torch.zeros(self.n_classes, device=device))
        self.counts = LabelCounts(self.trained_label_counts)
        self.mask = mask_from_args(args, self.counts)
        if args.mask_scope == "recent":
            self.counts.keep_streamed()
        self.task_free = False  # whether masks and replay act as if no task were announced (ER-ACE's --task_free)
        self.boundaries = True  # whether the loop announces tasks (begin_task, end_task); False: start_task_free()
        self.measured_task = 0  # the task the loop's segment stands for (measured_task(); no learner reads it)
        self.first_pass, self.last_pass = True, True  # where the step is among --passes steps on one batch
        self.calibration = CALIBRATIONS.get(args.calibration).from_args(args)
        self.reading_head = False
        self.opt = torch.optim.SGD(self.net.parameters(), lr=args.lr)
        self.scaler = torch.amp.GradScaler("cuda") if args.amp == "fp16" else None
        self.buffer = self.make_buffer(args, device) if args.buffer_size else None
        self.task = 0
        self.skipped_steps = 0
        self.watch = FiniteWatch(device)
        self.diagnostics = Diagnostics(self.n_classes, self.classes_per_task, device, window=bool(args.log_dir),
                                       every=args.diagnostics_every)
        self.register_buffer("online_counts", torch.zeros(2, self.n_tasks, device=device))  # correct, seen
        self.online_seen = [0] * self.n_tasks  # row 1 of online_counts, counted on the host (written at checkpoints)

    @staticmethod
    def add_args(parser):
        """Flags of this model (none by default)."""

    def make_buffer(self, args, device):
        """The replay memory --buffer_policy names (a model whose memory has its own policy keeps a Buffer)."""
        if args.buffer_policy == "balanced":
            return BalancedBuffer(args.buffer_size, device, self.n_classes)
        return Buffer(args.buffer_size, device)

    def forward(self, x):
        """The evaluation's logits (training forwards call self.net): the network's, through the calibration
        in eval mode (the head's own under head_only())."""
        if self.training or self.reading_head:
            return self.net(x)
        return self.calibration.logits(self, x)

    @contextmanager
    def head_only(self):
        """Evaluate the head's logits, without the calibration (the head's accuracy beside NME's)."""
        self.reading_head = True
        try:
            yield
        finally:
            self.reading_head = False

    def calibrate(self, task):
        """Called by the training loop after end_task(): the calibration's task-end correction."""
        self.calibration.end_task(self, task)

    def start_task_free(self):
        """On a stream that announces no task (utils/core/streams.py), called by the loop before the first step, and
        again on resume: no begin_task / end_task will come, self.task stays 0, the masks see no task
        (Position.task_free) and the label counts' training distribution is their running count (balanced)."""
        self.task_free, self.boundaries = True, False
        self.counts.follow_total()

    def begin_task(self, task, train_labels):
        """Start `task`; train_labels are the labels it trains on (with the buffer's, its training distribution)."""
        self.task = task
        counts = torch.bincount(train_labels, minlength=self.n_classes)
        if self.buffer is not None and not self.buffer.is_empty():
            counts = counts + self.buffer.class_counts(self.n_classes)
        self.counts.begin_task(counts)

    def prepare_task(self, task, images, labels):
        """Called after begin_task with the task's uint8 training images and labels, before its first step (LwF's
        warm-up of the new head); nothing by default."""

    def joined_training_data(self):
        """(uint8 images, labels) that join the current task's training data, shuffled in with it for every epoch:
        the buffer's exemplars where JOINS_EXEMPLARS (iCaRL's and LUCIR's, as Mammoth's `icarl_replay` merges the
        buffer into the task's dataset), else None; read by the training loop when a task starts or resumes."""
        if not self.JOINS_EXEMPLARS or self.buffer.is_empty():
            return None
        return self.buffer.images[:self.buffer.size], self.buffer.labels[:self.buffer.size]

    def end_task(self, task, images, labels):
        """Called after the last epoch of `task` with its uint8 training images and labels."""

    def observe(self, images, labels):
        raise NotImplementedError

    def train_step(self, images, labels, first=True, last=True):
        """One training step on a stream batch (the training loop's call): the step's label counts begin with the
        stream rows (a buffer draw adds its own), then the model's observe(). With --passes K the loop makes K steps
        on one batch: the online accuracy counts its first (test, then train), the buffer takes it at its last."""
        self.first_pass, self.last_pass = first, last
        self.counts.begin_step()
        self.counts.add(labels, stream=True)
        self.diagnostics.begin_step()
        return self.observe(images, labels)

    def position(self):
        """Where the step is, for the scopes and the masks' own terms (the classes seen: for the ace scope only; the
        classes of the last --scope_window steps' stream rows: for the recent scope only)."""
        scope = self.args.mask_scope
        seen = self.counts.seen() if scope == "ace" else None
        recent = self.counts.streamed_within(self.args.scope_window) if scope == "recent" else None
        return Position(self.task, self.classes_per_task, self.n_classes, seen, self.task_free, recent)

    def stream_loss(self, logits, labels):
        """CE of the stream rows through the mask over the classes --mask_scope keeps (each row's label always
        kept), plus the mask's own extra term if it has one: the mask's one place in every model."""
        position = self.position()
        keep = label_kept(SCOPES[self.args.mask_scope](labels, position), labels)
        observed = self.diagnostics.observe_stream(logits, measured_task(self))
        masked = masked_logits(observed, keep, self.mask)
        self.diagnostics.observe_masked(masked, keep)
        extra = self.mask.extra_loss(at_least_fp32(observed), labels, position)
        return F.cross_entropy(masked, labels) + (0 if extra is None else extra)

    def observe_online(self, logits, labels):
        """Online accuracy: the stream batch's Class-IL predictions (among the seen classes: those of the tasks so
        far, or on a stream without boundaries the classes trained on so far) from the training forward, before the
        batch's first step; counted on the device (argmax and comparison record no graph)."""
        if not self.first_pass:
            return
        if self.boundaries:
            predicted = logits[:, :(self.task + 1) * self.classes_per_task].argmax(1)
        else:
            predicted = logits.masked_fill(~self.counts.seen()[:logits.shape[1]], float("-inf")).argmax(1)
        task = measured_task(self)
        self.online_counts[0, task] += (predicted == labels).sum()
        self.online_seen[task] += len(labels)

    def online_accuracy(self):
        """{"per_task": % per task (None before a task's first batch), "mean": % over every stream batch}."""
        correct, seen = self.online_counts[0].tolist(), self.online_seen
        per_task = [100 * c / n if n else None for c, n in zip(correct, seen)]
        return {"per_task": per_task, "mean": 100 * sum(correct) / sum(seen) if sum(seen) else None}

    def buffer_loss(self, logits, labels):
        """Buffer CE: plain, or masked under --mask_buffer with --buffer_scope (task: each row's own task's
        classes; past: the classes of every task before the current one; a row's label is always kept)."""
        logits = self.diagnostics.observe_buffer(logits, measured_task(self))
        if self.args.mask_buffer:
            position = self.position()._replace(n_classes=logits.shape[1])  # X-DER's reads its past heads only
            return masked_cross_entropy(logits, labels, BUFFER_SCOPES[self.args.buffer_scope](labels, position),
                                        self.mask)
        return F.cross_entropy(at_least_fp32(logits), labels)

    def augment_together(self, *batches):
        """Augment several uint8 batches in one call and split them back."""
        return self.augment(torch.cat(batches)).split([len(b) for b in batches])

    def draw(self):
        """A buffer draw of --minibatch_size samples, or None while the buffer is empty."""
        if self.buffer.is_empty():
            return None
        draw = self.buffer.sample(self.args.minibatch_size)
        self.counts.add(draw.labels)
        return draw

    def separate_forwards_step(self, images, labels, draw):
        """CE_mask(stream) + CE(draw), each from its own forward: the sum of the two means (ER-ACE's step and
        the masking paper's ER); then the stream batch goes into the buffer. draw None: the stream alone."""
        stream_x, *replay_x = self.augment_together(images, *([] if draw is None else [draw.images]))
        logits = self.net(stream_x)
        terms = {"ce": self.stream_loss(logits, labels)}
        if draw is not None:
            terms["buffer_ce"] = self.buffer_loss(self.net(replay_x[0]), draw.labels)
        loss = self.step(terms, logits, labels)
        self.remember(images, labels)
        return loss

    def remember(self, images, labels, logits=None):
        """Reservoir-insert the non-augmented stream batch (at the last of its --passes steps)."""
        if self.last_pass:
            self.buffer.add(images, labels, logits)

    def step(self, terms, stream_logits, labels):
        """One SGD step on the sum of the named loss terms (`ce`: the stream rows' cross-entropy as it enters the
        loss, in every model), after counting the stream batch's online accuracy from its logits; returns the
        detached total.

        Decided on the device, with no host read: a step whose total or stream logits are not finite is noted
        in self.watch, which read_finite() reads at the logging interval and at epoch ends (--nan_policy stop
        then ends the run, naming that step); under --nan_policy skip its gradients are zeroed, so that plain
        SGD leaves the parameters as they are.
        """
        self.observe_online(stream_logits, labels)
        loss = sum(terms.values())
        names = tuple(terms)
        with torch.no_grad():
            values = torch.stack(list(terms.values())).float()
        self.diagnostics.record_terms(names, values)
        ok = torch.isfinite(loss) & torch.isfinite(stream_logits).all()
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.skip_unless(ok)
            self.before_update()
            self.opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.skip_unless(ok)
            self.before_update()
            self.scaler.step(self.opt)
            self.scaler.update()
        self.watch.note(ok, names, values)
        self.diagnostics.end_step()
        return loss.detach()

    def before_update(self):
        """Called between the backward (and the skip) and the optimizer step, the gradients as the step will read
        them (SI clips them and adds them to its path integral); nothing by default."""

    def skip_unless(self, ok):
        if self.args.nan_policy != "skip":
            return
        for parameter in self.net.parameters():
            if parameter.grad is not None:
                parameter.grad.copy_(torch.where(ok, parameter.grad, 0.0))

    def read_finite(self):
        """The non-finite steps since the last read (one host read): counted in skipped_steps under
        --nan_policy skip, else NonFiniteLoss naming the first."""
        bad, first, terms = self.watch.read()
        if self.args.nan_policy == "skip":
            self.skipped_steps += bad
        elif bad:
            raise NonFiniteLoss(first, terms)

    def checkpoint_state(self):
        """Everything needed to continue exactly: module tensors, optimizer, buffer, mask, counters."""
        self.online_counts[1].copy_(torch.tensor(self.online_seen, dtype=self.online_counts.dtype))
        return {"module": self.state_dict(), "opt": self.opt.state_dict(), "task": self.task,
                "scaler": None if self.scaler is None else self.scaler.state_dict(),
                "skipped_steps": self.skipped_steps, "label_counts": self.counts.state_dict(),
                "calibration": self.calibration.state_dict(),
                "diagnostics": self.diagnostics.state_dict(),
                "buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_checkpoint_state(self, state):
        state = upgraded(state)
        self.load_state_dict(state["module"])
        self.online_seen = [round(n) for n in self.online_counts[1].tolist()]
        self.opt.load_state_dict(state["opt"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.task, self.skipped_steps = state["task"], state["skipped_steps"]
        self.counts.load_state_dict(state["label_counts"])
        self.calibration.load_state_dict(state["calibration"])
        self.diagnostics.load_state_dict(state["diagnostics"])
        if self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])


def upgraded(state):
    """A checkpoint written before the label counts had one owner: the classes seen were a buffer of their own,
    LAS kept its window and balanced softmax its log counts in the mask's state."""
    if "label_counts" in state:
        return state
    mask = state["mask"]
    distribution = mask.get("log_counts")
    return {**state, "module": {k: v for k, v in state["module"].items() if k != "seen_classes"},
            "label_counts": {"steps": mask.get("steps"), "position": mask.get("position", 0),
                             "distribution": None if distribution is None else distribution.exp().round()}}
