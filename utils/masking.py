"""Softmax masks (Kim et al., arXiv 2309.14808) and the masked cross-entropy.

A mask rewrites the logits z [B, C] of a cross-entropy given keep [B, C] (True = the row's
softmax keeps that class). Each mask is one file in utils/masks/, registered by name there; this
module holds what every mask is used with: the masked cross-entropy and the scopes.
"""
import torch
import torch.nn.functional as F

from utils.tasks import task_of, task_of_classes


def masked_cross_entropy(logits, labels, keep, mask):
    """mean_i −log softmax(mask(z, keep))_i[y_i], computed in fp32 at least (fp64 stays fp64).

    The label's own class is always kept: a masked target would make the loss infinite.
    """
    return F.cross_entropy(masked_logits(logits, labels, keep, mask), labels)


def masked_logits(logits, labels, keep, mask):
    """The logits masked_cross_entropy reads: mask(z, keep with each row's label kept), in fp32 at least."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return mask(logits, label_kept(keep, labels))


def label_kept(keep, labels):
    """keep with each row's label class kept, as the cross-entropy uses it."""
    return keep.bool() | F.one_hot(labels, keep.shape[1]).bool()


def task_keep(labels, classes_per_task, n_classes):
    """Scope `task`: keep[i, c] iff class c belongs to the task of labels[i]."""
    return task_of_classes(n_classes, classes_per_task, labels.device)[None, :] == \
        task_of(labels, classes_per_task)[:, None]


def new_keep(labels, task, classes_per_task, n_classes):
    """Scope `new`: the classes of the current task and every later one (LODE's new classes)."""
    return (task_of_classes(n_classes, classes_per_task, labels.device) >= task).expand(len(labels), n_classes)


def past_keep(labels, task, classes_per_task, n_classes):
    """Buffer scope `past`: the classes of every task before the current one (SS-IL's replay softmax)."""
    return (task_of_classes(n_classes, classes_per_task, labels.device) < task).expand(len(labels), n_classes)


def ace_keep(labels, seen, n_classes):
    """Scope `ace` (Caccia et al. 2022): classes present in the batch plus classes never seen.

    `seen` is a bool [C] of the classes seen so far, this batch included.
    """
    present = torch.zeros(n_classes, dtype=torch.bool, device=labels.device).index_fill_(0, labels, True)
    return (present | ~seen).expand(labels.shape[0], n_classes)
