"""Bare training steps for `python -m utils.bench --small`: each model's computation written again with nothing
else: its forwards, its losses (the model's default mask included, since it is part of its loss), its buffer's
draws and reservoir insertion, on a copy of the model's network and memory, with the same augmentation and
optimiser settings. No diagnostics, numerics guard, online accuracy, label counting or registry dispatch.
X-DER, whose step is too large to write twice, runs its own code with that bookkeeping switched off
(`without_bookkeeping`)."""
import contextlib
import copy
import math

import torch
import torch.nn.functional as F


class Memory:
    """A copy of a model's reservoir memory (uint8 images, labels, logits, one spare row for what is dropped)."""

    def __init__(self, buffer):
        self.capacity, self.size, self.seen = buffer.capacity, buffer.size, buffer.n_seen
        self.fields = {name: tensor.clone() for name, tensor in buffer.storage.items()}

    def draw(self, n):
        index = torch.randperm(self.size)[:n]
        return [self.fields[name][index] for name in ("images", "labels", "logits") if name in self.fields]

    def insert(self, images, labels, logits=None):
        """Vitter's Algorithm R for a batch, a later item winning over an earlier one for the same slot."""
        n = len(labels)
        positions = self.seen + torch.arange(n)
        slots = (torch.rand(n) * (positions + 1)).long()
        if self.seen < self.capacity:
            slots = torch.where(positions < self.capacity, positions, slots)
        slots = torch.where(slots < self.capacity, slots, self.capacity)
        slots = torch.where(torch.triu(slots[:, None] == slots[None, :], 1).any(1), self.capacity, slots)
        self.fields["images"][slots], self.fields["labels"][slots] = images, labels
        if logits is not None:
            self.fields["logits"][slots] = logits
        self.seen += n
        self.size = min(self.seen, self.capacity)


def own_task_ninf(logits, labels, classes_per_task):
    """Each row's softmax over its own task's classes (−∞ elsewhere)."""
    first = labels // classes_per_task * classes_per_task
    classes = torch.arange(logits.shape[1])
    keep = (classes[None, :] >= first[:, None]) & (classes[None, :] < first[:, None] + classes_per_task)
    return logits.masked_fill(~keep, -math.inf)


class BareStep:
    """step(images, labels) of `model`'s computation alone (see the module's docstring)."""

    def __init__(self, model, dataset):
        self.name, self.args, self.augment = model.NAME, model.args, dataset.augment
        self.net = copy.deepcopy(model.net.net)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=model.args.lr)
        self.memory = Memory(model.buffer) if model.buffer is not None and model.buffer.images is not None else None
        self.task, self.per_task, self.n_classes = model.task, model.classes_per_task, model.n_classes
        self.seen = torch.zeros(model.n_classes, dtype=torch.bool)  # the classes trained on, for the ace scope
        if model.buffer is not None:
            self.seen.index_fill_(0, model.buffer.labels[:model.buffer.size], True)
        if self.name == "ssil":
            self.teacher = copy.deepcopy(self.net).requires_grad_(False)
        self.step = getattr(self, self.name.removeprefix("orth"), None)

    def optimise(self, loss):
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def views(self, *batches):
        return self.augment(torch.cat(batches)).split([len(b) for b in batches])

    def sgd(self, images, labels):
        self.optimise(F.cross_entropy(self.net(self.augment(images)), labels))

    joint = sgd

    def er(self, images, labels):
        replay_images, replay_labels = self.memory.draw(self.args.minibatch_size)
        logits = self.net(self.augment(torch.cat([images, replay_images])))
        n, m = len(labels), len(replay_labels)
        self.optimise((n * F.cross_entropy(logits[:n], labels) + m * F.cross_entropy(logits[n:], replay_labels))
                      / (n + m))
        self.memory.insert(images, labels)

    def der(self, images, labels):
        replay_images, _, replay_logits = self.memory.draw(self.args.minibatch_size)
        stream_x, replay_x = self.views(images, replay_images)
        stream_logits = self.net(stream_x)
        self.optimise(F.cross_entropy(stream_logits, labels)
                      + self.args.alpha * F.mse_loss(self.net(replay_x), replay_logits))
        self.memory.insert(images, labels, stream_logits.detach())

    def derpp(self, images, labels, mask=None, store_after_step=False):
        first, second = self.memory.draw(self.args.minibatch_size), self.memory.draw(self.args.minibatch_size)
        stream_x, first_x, second_x = self.views(images, first[0], second[0])
        stream_logits = self.net(stream_x)
        stream = stream_logits if mask is None else mask(stream_logits, labels, self.per_task)
        self.optimise(F.cross_entropy(stream, labels)
                      + self.args.alpha * F.mse_loss(self.net(first_x), first[2])
                      + self.args.beta * F.cross_entropy(self.net(second_x), second[1]))
        if store_after_step:
            with torch.no_grad():
                stream_logits = self.net(stream_x)
        self.memory.insert(images, labels, stream_logits.detach())

    def derppmr(self, images, labels):
        self.derpp(images, labels, own_task_ninf, store_after_step=True)

    def separate(self, images, labels, stream_mask):
        replay_images, replay_labels = self.memory.draw(self.args.minibatch_size)
        stream_x, replay_x = self.views(images, replay_images)
        stream = stream_mask(self.net(stream_x), labels)
        self.optimise(F.cross_entropy(stream, labels) + F.cross_entropy(self.net(replay_x), replay_labels))
        self.memory.insert(images, labels)

    def ermr(self, images, labels):
        self.separate(images, labels, lambda logits, y: own_task_ninf(logits, y, self.per_task))

    def er_ace(self, images, labels):
        """The ace scope: the classes present in the batch and those never seen."""
        self.seen.index_fill_(0, labels, True)
        present = torch.zeros(self.n_classes, dtype=torch.bool).index_fill_(0, labels, True)
        self.separate(images, labels, lambda logits, y: logits.masked_fill(~(present | ~self.seen), -math.inf))

    def ssil(self, images, labels):
        replay_images, replay_labels = self.memory.draw(self.args.minibatch_size)
        n, m, old = len(labels), len(replay_labels), self.task * self.per_task
        inputs = self.augment(torch.cat([images, replay_images]))
        logits = self.net(inputs)
        stream = F.cross_entropy(own_task_ninf(logits[:n], labels, self.per_task), labels)
        replay = F.cross_entropy(logits[n:, :old], replay_labels)
        with torch.no_grad():
            teacher = self.teacher(inputs)[:, :old]
        temperature, distillation = self.args.kd_temperature, 0
        for own, past in zip(logits[:, :old].split(self.per_task, 1), teacher.split(self.per_task, 1)):
            divergence = F.kl_div(F.log_softmax(own / temperature, 1), F.softmax(past / temperature, 1),
                                  reduction="batchmean")
            distillation = distillation + divergence * temperature ** 2
        self.optimise((n * stream + m * replay) / (n + m) + distillation)


class Silent:
    """Diagnostics that measure nothing."""

    def observe_stream(self, logits, task):
        return logits

    observe_buffer = observe_stream

    def __getattr__(self, name):
        return lambda *args, **kwargs: {}


@contextlib.contextmanager
def without_bookkeeping(model, pieces=("diagnostics", "guard", "online", "counts")):
    """The model with the named pieces of its step's bookkeeping switched off: diagnostics, the numerics guard,
    online accuracy, label counting (which the masks that read counts need: the default masks do not)."""
    saved = {}
    if "diagnostics" in pieces:
        saved["diagnostics"], model.diagnostics = model.diagnostics, Silent()
    if "guard" in pieces:
        model.watch.note = lambda *args: None
    if "online" in pieces:
        model.observe_online = lambda *args: None
    if "counts" in pieces:
        model.counts.add = model.counts.begin_step = lambda *args, **kwargs: None
    try:
        yield model
    finally:
        for name in ("note",):
            model.watch.__dict__.pop(name, None)
        model.__dict__.pop("observe_online", None)
        model.counts.__dict__.pop("add", None)
        model.counts.__dict__.pop("begin_step", None)
        if "diagnostics" in saved:
            model.diagnostics = saved["diagnostics"]


def bare_of(model, dataset):
    """The bare step of `model`: written again (BareStep), or, for X-DER, its own step without bookkeeping on a
    copy of the model."""
    bare = BareStep(model, dataset)
    if bare.step is not None:
        return bare.step
    twin = copy.deepcopy(model)
    context = without_bookkeeping(twin)
    context.__enter__()
    return twin.train_step
