"""X-DER (Boschini et al. 2022, "Class-Incremental Continual Learning into the eXtended DER-verse").

Where Mammoth's code (aimagelab/mammoth, models/xder.py) is more specific than the paper, this file
follows the code as of its commit 4688c67 ("update xder reproducibility", 2024-12-18; X-DER is marked
verified in that repository's REPRODUCIBILITY.md): the future-head hinge compares raw logits (weight 0.1,
margin 0.3); the past-head hinge, which compares softmax probabilities over the seen classes, is off by
default (it was always on, with the same flags, in the 2022 release); BatchNorm alignment is on (see
`observe`); 4 SupCon views; the optional SPKD term (`--dp_weight`) on the future heads of buffer
samples; the buffer is filled only at task end, with the logits of an augmented view (training-mode
forwards in batches of --batch_size that leave BatchNorm's running statistics alone); the two buffer
draws are merged without duplicates before the logit update. The stream CE is the mask's place: the
default `ninf` with task scope is the paper's CE on the current head.
"""
import argparse
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from models import register_model
from models.base import ContinualModel
from models.xder_losses import similarity_preserving_loss, supcon_loss
from utils.core.buffer import new_entries
from utils.core.tasks import task_of
from utils.plumbing.parser import non_negative_float, positive_float, positive_int


def update_future_logits(old, new, labels, start, end, gamma, bounded=False):
    """Buffered logits `old` with the heads [start, end) taken from `new`, scaled by γ·old[y]/max
    where that head's max exceeds the ground-truth logit old[y], so that the max becomes γ·old[y].

    That keeps the true class on top only when old[y] > 0. When old[y] ≤ 0 the cap γ·old[y] lies above
    old[y] (max < 0), or the scale turns negative and flips the transplant's signs (max > 0): either way
    a transplanted class can end above the stored target, and a max near zero makes the scale huge.
    Mammoth's code does the same, and the published numbers come from it, so it is the default.
    `bounded` (the suite's --bounded_rescale, not in the paper or Mammoth) clamps the scale to [0, 1]:
    the rescaling then only shrinks the transplant, never flips or magnifies it; rows with old[y] > 0
    are unchanged by it."""
    transplant = new[:, start:end]
    target = old[torch.arange(len(labels), device=old.device), labels]
    top = transplant.max(dim=1).values
    scale = torch.where(top > target, gamma * target / top, torch.ones_like(top))
    if bounded:
        scale = scale.clamp(0, 1)
    updated = old.clone()
    updated[:, start:end] = transplant * scale[:, None]
    return updated


def hinge(good, bad, margin, rows):
    """mean over the `rows` (a mask) with a positive value of max(bad) + margin − max(good); 0 when none is."""
    gap = bad.max(dim=1).values + margin - good.max(dim=1).values
    positive = (gap > 0) & rows
    return (gap * positive).sum() / positive.sum().clamp(min=1)


@contextlib.contextmanager
def frozen_bn_stats(net, active=True):
    """Forward passes inside do not update BatchNorm running statistics (while `active`); they still
    normalise with the statistics of their own batch in training mode."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if active else []
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def first_occurrences(indices):
    """(mask of the entries of `indices` not seen earlier in it, position of each entry's first occurrence)."""
    equal = indices[:, None] == indices[None, :]
    return ~torch.tril(equal, diagonal=-1).any(dim=1), equal.int().argmax(dim=1)


@register_model("xder")
class XDer(ContinualModel):
    """X-DER (Boschini et al. 2022): DER with past-head CE, update of buffered future logits, SupCon on
    future heads and hinge constraints; class-balanced buffer filled at task ends.

    Defaults: Mammoth's argparse defaults (see the module docstring); `--config best` adds the
    per-buffer values (utils/reference/best_configs.json)."""
    NEEDS_BUFFER = True
    OWN_MEMORY_POLICY = True  # class-balanced shares refilled at every task end
    TASK_FREE_REFUSAL = ("its heads are per task (the current one trained, the future ones by SupCon) and its "
                         "buffer is refilled at every task end")
    BUFFER_CE = True
    DEFAULT_MASK = "ninf"

    @staticmethod
    def add_args(parser):
        parser.add_argument("--alpha", type=non_negative_float, default=0.3, help="weight of the logit MSE")
        parser.add_argument("--beta", type=non_negative_float, default=0.8, help="weight of the past-head buffer CE")
        parser.add_argument("--gamma", type=non_negative_float, default=0.85, help="scale of updated future logits")
        parser.add_argument("--bounded_rescale", action=argparse.BooleanOptionalAction, default=False,
                            help="clamp the γ rescaling's scale to [0, 1], so that it never flips or magnifies "
                                 "transplanted logits (the suite's; default: off, as in the paper and Mammoth)")
        parser.add_argument("--lambd", type=non_negative_float, default=0.05, help="weight of the SupCon consistency")
        parser.add_argument("--eta", type=non_negative_float, default=0.1,
                            help="weight of the hinge constraints (Mammoth's constr_eta)")
        parser.add_argument("--margin", type=non_negative_float, default=0.3,
                            help="margin of the hinge constraints (Mammoth's constr_margin)")
        parser.add_argument("--future_constraint", action=argparse.BooleanOptionalAction, default=True,
                            help="hinge keeping future heads below the own head (default: on)")
        parser.add_argument("--past_constraint", action=argparse.BooleanOptionalAction, default=False,
                            help="hinge keeping the current head's probabilities above the past heads' "
                                 "(default: off, as in Mammoth since 2024; on in the 2022 release)")
        parser.add_argument("--align_bn", action=argparse.BooleanOptionalAction, default=True,
                            help="from task 2 on only the first buffer draw, forwarded with a slice of the "
                                 "stream batch, updates BatchNorm statistics (default: on)")
        parser.add_argument("--dp_weight", type=non_negative_float, default=0.0,
                            help="weight of the SPKD distance-preserving loss on buffered future logits")
        parser.add_argument("--simclr_temp", type=positive_float, default=5.0, help="SupCon temperature")
        parser.add_argument("--simclr_batch_size", type=positive_int, default=64, help="samples per SupCon batch")
        parser.add_argument("--simclr_num_aug", type=positive_int, default=4, help="strong views per sample")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("update_counter", torch.zeros(self.buffer.capacity, device=self.device))

    def head(self, task):
        return slice(task * self.classes_per_task, (task + 1) * self.classes_per_task)

    def own_head(self, logits, labels):
        """Each row's logits on the head of its own task, [B, classes_per_task]."""
        heads = torch.stack(logits.split(self.classes_per_task, dim=1), dim=1)
        return heads[torch.arange(len(labels), device=labels.device), task_of(labels, self.classes_per_task)]

    def observe(self, images, labels):
        """With --align_bn, from the second task on the stream forward, the second draw and the SupCon
        views leave BatchNorm's running statistics alone; only the first draw, forwarded together with
        the first minibatch_size // task stream images, updates them (Mammoth's alignment)."""
        n_past, n_seen = self.task * self.classes_per_task, (self.task + 1) * self.classes_per_task
        align = self.args.align_bn and self.task > 0
        draws = [] if self.buffer.is_empty() else [self.draw(), self.draw()]
        stream_x, *replay_x = self.augment_together(images, *(d.images for d in draws))
        with frozen_bn_stats(self.net, align):
            outputs = self.net(stream_x)
        terms = {"ce": self.stream_loss(outputs, labels)}
        good, bad = outputs[:, self.head(self.task)], outputs[:, n_seen:]
        rows = torch.ones(len(labels), dtype=torch.bool, device=labels.device)
        if draws:
            first, second = draws
            aligned = stream_x[:self.args.minibatch_size // self.task] if align else stream_x[:0]
            first_out = self.net(torch.cat([replay_x[0], aligned]))[:len(replay_x[0])]
            with frozen_bn_stats(self.net, self.args.align_bn):
                second_out = self.net(replay_x[1])
            terms["mse"] = self.args.alpha * F.mse_loss(first_out, first.logits)
            terms["buffer_ce"] = self.args.beta * self.buffer_loss(second_out[:, :n_past], second.labels)
            indices = torch.cat([first.indices, second.indices])
            buf_out, buf_labels = torch.cat([first_out, second_out]), torch.cat([first.labels, second.labels])
            unique, first_of = first_occurrences(indices)
            self.refresh_logits(indices, buf_labels, torch.cat([first.logits, second.logits]), buf_out.detach(),
                                unique, first_of)
            good = torch.cat([good, self.own_head(buf_out, buf_labels)])
            bad = torch.cat([bad, buf_out[:, n_seen:]])
            rows = torch.cat([rows, unique])
        if self.task < self.n_tasks - 1:
            terms.update(self.future_terms(images, labels))
            if self.args.future_constraint:
                terms["future_hinge"] = self.args.eta * hinge(good, bad, self.args.margin, rows)
        if self.args.past_constraint and self.task > 0:
            probs = F.softmax(outputs[:, :n_seen], dim=1)
            terms["past_hinge"] = self.args.eta * hinge(probs[:, n_past:], probs[:, :n_past].detach(), self.args.margin,
                                                   rows[:len(labels)])
        return self.step(terms, outputs, labels)

    @torch.no_grad()
    def refresh_logits(self, indices, labels, logits, outputs, unique, first_of):
        """Update the present and future heads of past-task entries, the k-th time with probability 1/k.
        Rows are the two draws together; an entry drawn twice counts once (its first row, `unique`), and
        every row of it writes what that row decides, so the write needs no host read."""
        past = (task_of(labels, self.classes_per_task) < self.task) & unique
        self.update_counter.index_put_((indices,), past.to(self.update_counter.dtype), accumulate=True)
        chosen = past & (torch.rand(len(indices), device=self.device) * self.update_counter[indices] < 1)
        updated = self.rescaled(logits, outputs, labels, self.task * self.classes_per_task, self.n_classes)
        self.buffer.logits[indices] = torch.where(chosen[first_of, None], updated[first_of], logits)

    def rescaled(self, old, new, labels, start, end):
        """update_future_logits with this run's --gamma and --bounded_rescale."""
        return update_future_logits(old, new, labels, start, end, self.args.gamma, bounded=self.args.bounded_rescale)

    def future_terms(self, images, labels):
        """λ·SupCon over strong views on each future head separately and, with --dp_weight, the SPKD
        term between the buffered samples' future heads and their stored logits (Mammoth's dp loss)."""
        size = self.args.simclr_batch_size
        images, labels = images[:size], labels[:size]
        draw = None if self.buffer.is_empty() else self.buffer.sample(size)
        if draw is not None:
            images, labels = torch.cat([draw.images, images]), torch.cat([draw.labels, labels])
        views = self.strong_augment(images.repeat_interleave(self.args.simclr_num_aug, dim=0))
        with frozen_bn_stats(self.net, self.args.align_bn):
            outputs = self.net(views)
        start = (self.task + 1) * self.classes_per_task
        future = outputs.view(len(labels), self.args.simclr_num_aug, -1)[:, :, start:]
        heads = future.split(self.classes_per_task, dim=2)
        supcon = sum(supcon_loss(F.normalize(h, dim=2), labels, self.args.simclr_temp) for h in heads)
        terms = {"supcon": self.args.lambd * supcon / (len(heads) * len(labels))}
        if self.args.dp_weight > 0 and draw is not None:
            # [heads, views, n, classes_per_task] against the stored logits [heads, 1, n, classes_per_task]
            current = torch.stack(heads)[:, :len(draw.labels)].transpose(1, 2)
            stored = torch.stack(draw.logits[:, start:].split(self.classes_per_task, dim=1))[:, None]
            terms["dp"] = self.args.dp_weight * similarity_preserving_loss(current, stored).mean()
        return terms

    @torch.no_grad()
    def end_task(self, task, images, labels):
        """Class-balanced buffer: shrink the past classes to an equal share, fill the rest with this
        task's data (logits with the past heads kept below the true class), then update the present
        and future heads of the past entries. As in Mammoth, that update forwards the whole buffer in a
        random order, so the BatchNorm statistics of each batch mix past and new entries (the buffer is
        stored task by task: forwarding the past entries alone would give other statistics)."""
        with frozen_bn_stats(self.net):
            if task > 0:
                self.buffer.shrink_to_share((task + 1) * self.classes_per_task)
            chosen = new_entries(labels, self.buffer.capacity - self.buffer.size)
            logits = self.chunked_forward(images[chosen])
            if task > 0:
                logits = self.rescaled(logits, logits, labels[chosen], 0, task * self.classes_per_task)
            self.buffer.append(images[chosen], labels[chosen], logits)
            past = torch.nonzero(task_of(self.buffer.labels[:self.buffer.size], self.classes_per_task) < task).flatten()
            if len(past):
                order = torch.randperm(self.buffer.size, device=self.device)
                outputs = torch.empty_like(self.buffer.logits[:self.buffer.size])
                outputs[order] = self.chunked_forward(self.buffer.images[order])
                self.buffer.logits[past] = self.rescaled(self.buffer.logits[past], outputs[past],
                                                         self.buffer.labels[past], task * self.classes_per_task,
                                                         self.n_classes)
        self.update_counter.zero_()

    def chunked_forward(self, images):
        """Augmented forward in training mode, in batches of --batch_size as Mammoth's end_task runs it:
        the BatchNorm batch statistics behind the stored logits come from batches of that size."""
        return torch.cat([self.net(self.augment(part)) for part in images.split(self.args.batch_size)])
