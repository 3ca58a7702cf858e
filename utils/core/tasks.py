"""The one place that says which task a class belongs to. Labels inside the suite are positions in the
run's class order, so task t holds labels [t·C, (t+1)·C) for C classes per task; a shuffled order
(--class_order seed) only changes which original class each label stands for (ContinualDataset.prepare)."""
import functools

import numpy as np
import torch


def task_of(labels, classes_per_task):
    """The task of each label (a tensor or an int)."""
    return labels // classes_per_task


@functools.lru_cache(maxsize=None)
def task_of_classes(n_classes, classes_per_task, device):
    """[C]: the task of every class (made once per shape and device; read only)."""
    return task_of(torch.arange(n_classes, device=device), classes_per_task)


def class_order(n_classes, how, seed):
    """order[i] = the original class that label i stands for: 0..C-1 when fixed; with `seed`, a
    permutation drawn from its own generator seeded by the run's seed (no global RNG is touched)."""
    if how == "fixed":
        return np.arange(n_classes)
    return np.random.default_rng(seed).permutation(n_classes)


def relabel(labels, order):
    """Original class labels -> positions in `order`."""
    position = torch.empty(len(order), dtype=labels.dtype, device=labels.device)
    position[torch.as_tensor(order, device=labels.device)] = torch.arange(len(order), dtype=labels.dtype,
                                                                          device=labels.device)
    return position[labels]
