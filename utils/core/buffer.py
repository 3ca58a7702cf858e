"""Reservoir buffer (Vitter's Algorithm R) whose tensors live on the training device."""
from typing import NamedTuple

import torch


class BufferSample(NamedTuple):
    images: torch.Tensor
    labels: torch.Tensor
    logits: torch.Tensor
    indices: torch.Tensor


def reservoir_slots(n_seen, batch_size, capacity, device, discard=-1):
    """Algorithm R for a batch: slot of each incoming item, or `discard` (−1) where it is discarded.

    Item k (0-based over the stream) goes to slot k while the buffer fills, else to a uniform
    r in [0, k] if r < capacity. Within a batch a later item overwrites an earlier one, exactly
    as one-by-one insertion would.
    """
    positions = n_seen + torch.arange(batch_size, device=device)
    slots = (torch.rand(batch_size, device=device) * (positions + 1)).long()
    if n_seen < capacity:  # a host int: the items that still find a free slot take it
        slots = torch.where(positions < capacity, positions, slots)
    slots = torch.where(slots < capacity, slots, discard)
    later = slots[:, None] == slots[None, :]
    overwritten = torch.triu(later, diagonal=1).any(dim=1)
    return torch.where(overwritten, discard, slots)


def rank_within_class(labels):
    """For each entry, how many entries of the same class come before it."""
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(labels), device=labels.device) - torch.searchsorted(sorted_labels, sorted_labels)
    return rank


def balanced_subset(labels, per_class):
    """Indices of the first `per_class` entries of each class."""
    return torch.nonzero(rank_within_class(labels) < per_class).flatten()


def new_entries(labels, free):
    """Indices of `free` samples of `labels` (one task's), as equal per class as possible (the remainder
    goes to random classes), in a random order: how a class-balanced buffer is filled at a task end."""
    classes = torch.unique(labels)
    quota = torch.full((len(classes),), free // len(classes), device=labels.device)
    quota[torch.randperm(len(classes), device=labels.device)[:free % len(classes)]] += 1
    order = torch.randperm(len(labels), device=labels.device)
    shuffled = labels[order]
    return order[rank_within_class(shuffled) < quota[torch.searchsorted(classes, shuffled)]]


class Buffer:
    """Fixed-capacity memory of (image, label, raw logits), filled by reservoir sampling."""
    FIELDS = ("images", "labels", "logits")

    def __init__(self, capacity, device):
        self.capacity = capacity
        self.device = torch.device(device)
        self.n_seen = 0
        self.size = 0
        self.images = self.labels = self.logits = None

    def _allocate(self, image_shape, image_dtype, logit_width):
        """Zeroed fields, each with one spare row past the capacity: the writes of discarded items go there,
        so that insertion needs no host read to leave them out."""
        rows = self.capacity + 1
        self.storage = {"images": torch.zeros((rows, *image_shape), dtype=image_dtype, device=self.device),
                        "labels": torch.zeros(rows, dtype=torch.long, device=self.device)}
        if logit_width is not None:
            self.storage["logits"] = torch.zeros((rows, logit_width), dtype=torch.float32, device=self.device)
        for name in self.FIELDS:
            setattr(self, name, self.storage[name][:self.capacity] if name in self.storage else None)

    def add(self, images, labels, logits=None):
        """Reservoir-insert a batch; images keep their dtype (uint8 stays uint8), logits are stored fp32.
        Rows whose logits are not finite are never stored, so a diverged step never poisons the buffer:
        while it fills they are dropped before sampling (a host read, for its first capacity / batch steps
        only); once it is full they count as seen and the slots they draw keep what they held (no host read)."""
        if logits is not None and self.n_seen < self.capacity:
            finite = torch.isfinite(logits).all(dim=1)
            images, labels, logits = images[finite], labels[finite], logits[finite]
        slots = reservoir_slots(self.n_seen, len(labels), self.capacity, self.device, discard=self.capacity)
        if logits is not None:  # slot `capacity` is the spare row, which takes what is discarded
            slots = torch.where(torch.isfinite(logits).all(dim=1), slots, self.capacity)
        self.n_seen += len(labels)
        self.size = min(self.n_seen, self.capacity)
        self.write(slots, images, labels, logits)

    def write(self, slots, images, labels, logits=None):
        """Overwrite the given slots (used by reservoir insertion and by models that refill); slot `capacity`
        is the spare row, which takes what is discarded."""
        if self.images is None:
            self._allocate(images.shape[1:], images.dtype, None if logits is None else logits.shape[1])
        self.storage["images"][slots] = images.to(self.device)
        self.storage["labels"][slots] = labels.to(self.device)
        if logits is not None:
            self.storage["logits"][slots] = logits.detach().float().to(self.device)

    def append(self, images, labels, logits=None):
        """Write a batch into the free slots after the current entries (no sampling)."""
        slots = torch.arange(self.size, self.size + len(labels), device=self.device)
        self.write(slots, images, labels, logits)
        self.size = self.n_seen = self.size + len(labels)

    def shrink_to_share(self, n_classes):
        """Keep the first capacity // n_classes entries of each class: a class-balanced memory making room
        for new classes (X-DER's and SS-IL's task ends)."""
        self.keep_only(balanced_subset(self.labels[:self.size], self.capacity // n_classes))

    def keep_only(self, indices):
        """Compact the buffer to the entries at `indices` (in that order); the rest is freed."""
        for name in self.FIELDS:
            tensor = getattr(self, name)
            if tensor is not None:
                tensor[:len(indices)] = tensor[indices].clone()
        self.size = self.n_seen = len(indices)

    def is_empty(self):
        return self.size == 0

    def sample(self, n):
        """min(n, size) distinct entries drawn uniformly without replacement."""
        indices = torch.randperm(self.size, device=self.device)[:n]
        return self.at(indices)

    def at(self, indices):
        logits = None if self.logits is None else self.logits[indices]
        return BufferSample(self.images[indices], self.labels[indices], logits, indices)

    def class_counts(self, n_classes):
        return torch.bincount(self.labels[:self.size], minlength=n_classes)

    def state_dict(self):
        return {"n_seen": self.n_seen, "size": self.size, **{name: getattr(self, name) for name in self.FIELDS}}

    def load_state_dict(self, state):
        self.n_seen, self.size = state["n_seen"], state["size"]
        self.images = self.labels = self.logits = None
        if state["images"] is not None:
            self._allocate(state["images"].shape[1:], state["images"].dtype,
                           None if state["logits"] is None else state["logits"].shape[1])
            for name in self.FIELDS:
                if state[name] is not None:
                    getattr(self, name).copy_(state[name])

    def entry_bytes(self):
        """{field: bytes one entry takes} of the allocated fields."""
        return {name: getattr(self, name)[0].nbytes for name in self.FIELDS if getattr(self, name) is not None}

    def nbytes(self):
        return self.capacity * sum(self.entry_bytes().values())
