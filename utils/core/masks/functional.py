"""The masked softmax of the stream loss: which classes a row keeps (the scopes), the paper's masks (Kim et al.,
arXiv 2309.14808) as pure functions in the style of torch.nn.functional, mask(logits, keep, m) -> logits, and the
masked cross-entropy every mask is used in.

keep [B, C] is True where a row's softmax keeps the class; a mask rewrites the other entries and never writes into
its input. m is the `--mask_value` of the masks that use one. `--mask_scope` and `--buffer_scope` take their
choices from the SCOPES and BUFFER_SCOPES tables below, and a model reads them with its position in the stream:
keep = SCOPES[name](labels, position) -> bool [B, C]."""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from utils.core.masks import register_mask
from utils.core.masks.scope_batch import batch_classes
from utils.core.masks.scope_recent import recent_classes
from utils.core.tasks import task_of, task_of_classes


class Position(NamedTuple):
    """Where a step is: the current task, the stream's shape, the classes trained on so far (this step's rows
    included), whether the stream announces its tasks, and the classes its recent steps streamed."""
    task: int
    classes_per_task: int
    n_classes: int
    seen: torch.Tensor
    task_free: bool = False
    recent: torch.Tensor = None  # bool [C]: the classes of the last --scope_window steps' stream rows (scope recent)


def task_classes(position, device):
    return task_of_classes(position.n_classes, position.classes_per_task, device)


def own_task(labels, position):
    """Scope `task`: keep[i, c] iff class c belongs to the task of labels[i]."""
    return task_classes(position, labels.device)[None, :] == task_of(labels, position.classes_per_task)[:, None]


def new_tasks(labels, position):
    """Scope `new`: the classes of the current task and every later one (LODE's new classes)."""
    return (task_classes(position, labels.device) >= position.task).expand(len(labels), position.n_classes)


def past_tasks(labels, position):
    """Buffer scope `past`: the classes of every task before the current one (SS-IL's replay softmax)."""
    return (task_classes(position, labels.device) < position.task).expand(len(labels), position.n_classes)


def batch_and_unseen(labels, position):
    """Scope `ace` (Caccia et al. 2022): the classes present in the batch plus those never seen. On the first
    task of a stream that announces its tasks every class is kept, as ER-ACE trains its first task with the plain
    cross-entropy."""
    if position.task == 0 and not position.task_free:
        return torch.ones(len(labels), position.n_classes, dtype=torch.bool, device=labels.device)
    present = torch.zeros(position.n_classes, dtype=torch.bool, device=labels.device).index_fill_(0, labels, True)
    return (present | ~position.seen).expand(len(labels), position.n_classes)


SCOPES = {"task": own_task, "ace": batch_and_unseen, "new": new_tasks, "batch": batch_classes,
          "recent": recent_classes}
NEEDS_TASK = frozenset({"task", "new"})  # scopes defined by the current task: refused on a stream that announces none
BUFFER_SCOPES = {"task": own_task, "past": past_tasks}


@register_mask("none")
def none(logits, keep, m=None):
    """ẑ = z: the plain softmax cross-entropy."""
    return logits


@register_mask("ninf")
def ninf(logits, keep, m=None):
    """ẑ_j = −∞ for masked j: softmax over the kept classes only, zero gradient to the rest."""
    return logits.masked_fill(~keep, -math.inf)


@register_mask("general", uses_value=True)
def general(logits, keep, m):
    """ẑ_j = m for masked j (the paper's general masked softmax; m = −∞ is `ninf`).

    The masked entries are constants, so their gradient is zero; m sets how hard the kept classes are pushed
    (larger m: more plastic, lower m: more stable)."""
    return logits.masked_fill(~keep, m)


@register_mask("stopgrad", uses_value=True)
def stopgrad(logits, keep, m):
    """ẑ_j = sg(z_j) + m for masked j: the forward pass is unchanged at m = 0, the gradient to masked classes is
    cut (the paper's stop-gradient masking)."""
    return torch.where(keep, logits, logits.detach() + m)


def label_kept(keep, labels):
    """keep with each row's label class kept: a masked target would make the cross-entropy infinite."""
    return keep.bool().scatter(1, labels[:, None], True)


def at_least_fp32(logits):
    """bf16 and fp16 logits (under --amp) as fp32; fp32 and fp64 as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def masked_logits(logits, keep, mask):
    """mask(z, keep), keep already holding each row's label, computed in fp32 at least (fp64 stays fp64)."""
    return mask(at_least_fp32(logits), keep)


def masked_cross_entropy(logits, labels, keep, mask):
    """mean_i −log softmax(mask(z, keep))_i[y_i], each row's label kept."""
    return F.cross_entropy(masked_logits(logits, label_kept(keep, labels), mask), labels)


def add_prior(logits, prior):
    """logits + a per-class term [C], over the classes the logits cover (their first columns)."""
    return logits + prior[:logits.shape[1]]
