"""models/er_ace.py: ER-ACE's keep set on a hand-made batch, as the model reads it (its position in the stream, the
classes seen from its label counts, the ace scope)."""
from types import SimpleNamespace

import torch

from models.er_ace import ErAce
from utils.core.label_counts import LabelCounts
from utils.core.masks.functional import SCOPES


def keep_after(model, labels):
    model.counts.add(labels)
    return SCOPES["ace"](labels, model.position())


def test_ace_keep_set_on_a_hand_made_batch():
    model = ErAce.__new__(ErAce)
    torch.nn.Module.__init__(model)
    model.args = SimpleNamespace(mask_scope="ace", task_free=False)
    model.n_classes, model.classes_per_task, model.task_free = 6, 2, False
    model.counts = LabelCounts(torch.zeros(6))
    model.task = 0
    assert keep_after(model, torch.tensor([0, 1, 1])).all()
    model.task = 1
    keep = keep_after(model, torch.tensor([2, 2]))
    # seen: 0, 1 (task 0) and 2 (this batch); kept: 2 (present) + 3, 4, 5 (never seen)
    assert keep.tolist() == [[False, False, True, True, True, True]] * 2
    model.task_free, model.task = True, 0
    model.counts = LabelCounts(torch.zeros(6))
    assert keep_after(model, torch.tensor([0, 1])).all()
    assert keep_after(model, torch.tensor([0])).tolist() == [[True, False, True, True, True, True]]
