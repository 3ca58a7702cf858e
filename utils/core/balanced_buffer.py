"""Class-balanced reservoir sampling (CBRS, Chrysakis & Moens, ICML 2020, Algorithm 1): a memory that keeps the
classes seen as equal in number as the stream allows, whatever their share of the stream."""
import torch

from utils.core.buffer import Buffer


class BalancedBuffer(Buffer):
    """While the memory fills, every item is stored. Once full, an item of class c
    - that is not *full* (a class is full once it has been a largest class in memory) replaces a random stored item
      of a largest class (uniform over the items of the largest classes, so each of several equally large classes
      is equally likely);
    - that is full replaces a random stored item of its own class with probability m_c / n_c (m_c its stored
      items, n_c its items seen so far, this one included), else is discarded.
    Items are taken one by one in batch order, on the device, with no host read once the memory is full. Items
    whose logits are not finite are never stored (while it fills they are dropped, a host read as in Buffer)."""

    def __init__(self, capacity, device, n_classes):
        super().__init__(capacity, device)
        self.stored = torch.zeros(n_classes, dtype=torch.long, device=self.device)
        self.seen = torch.zeros(n_classes, dtype=torch.long, device=self.device)
        self.full = torch.zeros(n_classes, dtype=torch.bool, device=self.device)

    def add(self, images, labels, logits=None):
        if self.n_seen < self.capacity:  # a host int: the first items take the free slots
            if logits is not None:
                finite = torch.isfinite(logits).all(dim=1)
                images, labels, logits = images[finite], labels[finite], logits[finite]
            free = min(self.capacity - self.n_seen, len(labels))
            self.fill(images[:free], labels[:free], None if logits is None else logits[:free])
            images, labels = images[free:], labels[free:]
            logits = None if logits is None else logits[free:]
        for row in range(len(labels)):
            self.insert_one(images[row:row + 1], labels[row:row + 1], None if logits is None else logits[row:row + 1])

    def fill(self, images, labels, logits):
        if not len(labels):
            return
        self.seen += torch.bincount(labels, minlength=len(self.seen))
        self.stored += torch.bincount(labels, minlength=len(self.stored))
        self.append(images, labels, logits)
        self.full |= self.stored == self.stored.max()

    def insert_one(self, image, label, logits):
        """One item into the full memory, in the slot the rule above picks (the spare row `capacity` discards)."""
        self.seen.index_add_(0, label, torch.ones_like(label))
        held = self.labels
        largest = self.stored == self.stored.max()
        candidates = torch.where(self.full[label], held == label, largest[held])
        slot = torch.where(candidates, torch.rand(self.capacity, device=self.device), -1.0).argmax().view(1)
        chance = self.stored[label].float() / self.seen[label].float()
        taken = ~self.full[label] | (torch.rand(1, device=self.device) <= chance)
        if logits is not None:
            taken = taken & torch.isfinite(logits).all()
        self.stored.index_add_(0, held[slot], -taken.long())
        self.stored.index_add_(0, label, taken.long())
        self.full |= self.stored == self.stored.max()
        self.n_seen += 1
        self.write(torch.where(taken, slot, self.capacity), image, label, logits)

    def state_dict(self):
        return {**super().state_dict(), "stored": self.stored, "seen": self.seen, "full": self.full}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for name in ("stored", "seen", "full"):
            getattr(self, name).copy_(state[name])
