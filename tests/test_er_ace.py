"""models/er_ace.py: ER-ACE's keep set on a hand-made batch."""
from types import SimpleNamespace

import torch

from models.er_ace import ErAce


def test_ace_keep_set_on_a_hand_made_batch():
    model = ErAce.__new__(ErAce)
    torch.nn.Module.__init__(model)
    model.args = SimpleNamespace(mask_scope="ace", task_free=False)
    model.n_classes, model.classes_per_task = 6, 2
    model.seen_classes = torch.zeros(6, dtype=torch.bool)
    model.task = 0
    assert model.stream_keep(torch.tensor([0, 1, 1])).all()
    model.task = 1
    keep = model.stream_keep(torch.tensor([2, 2]))
    # seen: 0, 1 (task 0) and 2 (this batch); kept: 2 (present) + 3, 4, 5 (never seen)
    assert keep.tolist() == [[False, False, True, True, True, True]] * 2
    model.args.task_free, model.task = True, 0
    model.seen_classes[:] = False
    assert model.stream_keep(torch.tensor([0, 1])).all()
    assert model.stream_keep(torch.tensor([0])).tolist() == [[True, False, True, True, True, True]]
