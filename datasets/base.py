"""ContinualDataset: whole splits as uint8 tensors on the device, split into class-incremental tasks."""
import warnings
from typing import NamedTuple

import torch
from torch import nn

from utils.core.tasks import class_order, relabel, task_of


class DataError(Exception):
    """Data that cannot be found, downloaded or read; the message is the one line users see."""


class DataWarning(UserWarning):
    """Data that loads, but not as published (e.g. a subset whose checksums differ)."""


class Splits(NamedTuple):
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def held_out(labels, fraction, seed):
    """Bool [N]: the validation samples of a training split: round(fraction · n_c) of each class's n_c samples, drawn
    by a generator seeded with `seed` alone (the same held-out samples for every run, model and seed)."""
    generator = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for label in torch.unique(labels.cpu()).tolist():
        members = torch.nonzero(labels.cpu() == label).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[:round(fraction * len(members))]]
        held[chosen] = True
    return held


_BUNDLED_SPLITS = {}  # dataset class -> its CPU splits, for datasets whose data ship inside a package


class ContinualDataset:
    """Subclasses set the class attributes and implement load_splits() and get_backbone().

    Task t holds labels [t·N_CLASSES_PER_TASK, (t+1)·N_CLASSES_PER_TASK) of the run's class order
    (utils/core/tasks.py): the classes as numbered with --class_order fixed, a per-seed permutation with seed.
    N_EPOCHS, BATCH_SIZE, LR and LR_MILESTONES (epochs where the lr is multiplied by --lr_gamma,
    restarting at every task) are the published defaults used when the flags are not given. CONVOLUTIONAL: the
    backbone is a CNN (channels_last is then the default in fp32). BUNDLED: the data ship inside an installed
    package and read no flag, so a process (a sweep worker) reads them once and gives each run its own copy.
    """
    N_TASKS: int
    N_CLASSES_PER_TASK: int
    N_EPOCHS: int
    BATCH_SIZE: int
    LR: float
    MEAN = (0.0,)
    STD = (1.0,)
    LR_MILESTONES = ()
    CONVOLUTIONAL = False
    BUNDLED = False
    CONFIG_DATASET = None  # the dataset whose --config best entries this one takes (None: its own)
    BOUNDARIES = True  # False: the stream never announces a task, whatever --stream (e.g. MNIST-360)

    def __init__(self, args):
        self.args = args
        self.splits = None

    @staticmethod
    def add_args(parser):
        """Flags of this dataset (none by default)."""

    @property
    def n_classes(self):
        return self.N_TASKS * self.N_CLASSES_PER_TASK

    def load_splits(self):
        """Return Splits of uint8 [N, C, H, W] images and int64 labels, on the CPU."""
        raise NotImplementedError

    def loaded_splits(self):
        """load_splits(), read once per process for a BUNDLED dataset (each call gets its own copy)."""
        if not self.BUNDLED:
            return self.load_splits()
        if type(self) not in _BUNDLED_SPLITS:
            _BUNDLED_SPLITS[type(self)] = self.load_splits()
        return Splits(*(t.clone() for t in _BUNDLED_SPLITS[type(self)]))

    def get_backbone(self):
        raise NotImplementedError

    def provenance(self):
        """Where the data came from, for the results line (None: the dataset's name says it)."""
        return None

    def train_augmentation(self):
        """Kornia pipeline applied on the device to float images in [0, 1]."""
        return nn.Identity()

    def strong_augmentation(self):
        """Kornia pipeline of the strong views of X-DER's consistency loss (SimCLR-style):
        random resized crop, flip, colour jitter and grayscale (jitter of brightness and contrast
        only for one-channel images)."""
        import kornia.augmentation as K

        from datasets.augmentations import ColorJiggleInOrder, ResizedCrop
        size = tuple(self.splits.train_images.shape[2:])
        if len(self.MEAN) == 1:
            return nn.Sequential(ResizedCrop(size, scale=(0.2, 1.0)), K.RandomHorizontalFlip(),
                                 ColorJiggleInOrder(0.4, 0.4, p=0.8))
        return nn.Sequential(ResizedCrop(size, scale=(0.2, 1.0)), K.RandomHorizontalFlip(),
                             ColorJiggleInOrder(0.4, 0.4, 0.4, 0.1, p=0.8), K.RandomGrayscale(p=0.2))

    def prepare(self, device, splits=None):
        """Load the splits (or use the given ones) onto `device`, their labels renumbered by the run's
        class order, and build the augmentation there; with --validation F, the training split's held-out part
        (held_out) replaces the test split, which is not kept."""
        splits = splits or self.loaded_splits()
        fraction = getattr(self.args, "validation", 0)
        if fraction:
            held = held_out(splits.train_labels, fraction, getattr(self.args, "validation_seed", 0))
            splits = Splits(splits.train_images[~held], splits.train_labels[~held], splits.train_images[held],
                            splits.train_labels[held])
        splits = Splits(*(t.to(device) for t in splits))
        self.class_order = class_order(self.n_classes, getattr(self.args, "class_order", "fixed"),
                                       getattr(self.args, "seed", 0))
        self.splits = splits._replace(train_labels=relabel(splits.train_labels, self.class_order),
                                      test_labels=relabel(splits.test_labels, self.class_order))
        self.augmentation = self.train_augmentation().to(device)
        self.strong = self.strong_augmentation().to(device)
        self.mean = torch.tensor(self.MEAN, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(self.STD, device=device).view(1, -1, 1, 1)

    def stream_order(self, generator):
        """The dataset's own training stream: a list of index tensors into splits.train_*, one per segment, trained
        in that order without shuffling, drawn with `generator` (seeded from --seed); None (the default): the loop
        builds the order from --stream (utils/core/streams.py)."""
        return None

    def task_indices(self, task, train=True):
        labels = self.splits.train_labels if train else self.splits.test_labels
        return torch.nonzero(task_of(labels, self.N_CLASSES_PER_TASK) == task).flatten()

    def normalize(self, images):
        """uint8 images -> normalized float (evaluation transform)."""
        return (images.float() / 255 - self.mean) / self.std

    def augment(self, images):
        """uint8 images -> augmented, normalized float (training transform, one batched call)."""
        return (self.augmentation(images.float() / 255) - self.mean) / self.std

    def augment_strong(self, images):
        """uint8 images -> strongly augmented, normalized float (X-DER's views, one batched call)."""
        return (self.strong(images.float() / 255) - self.mean) / self.std


def warn_data(message):
    warnings.warn(message, DataWarning, stacklevel=2)
