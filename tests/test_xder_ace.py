"""X-DER's pieces against hand-computed tensors; ER-ACE's keep-set on a hand-made batch."""
import math
from types import SimpleNamespace

import pytest
import torch

from models.er_ace import ErAce
from models.xder import XDer, first_occurrences, hinge, update_future_logits
from models.xder_losses import supcon_loss


def test_update_future_logits_scales_only_rows_whose_new_max_beats_the_target():
    old = torch.tensor([[5.0, 1.0, 0.0, 0.0], [2.0, 0.5, 0.0, 0.0]])
    new = torch.tensor([[9.0, 9.0, 4.0, 10.0], [9.0, 9.0, 1.0, 1.5]])
    updated = update_future_logits(old, new, torch.tensor([0, 0]), start=2, end=4, gamma=0.5)
    # row 0: max(4, 10) = 10 > 5 -> scale 0.5·5/10 = 0.25; row 1: max 1.5 < 2 -> copied as is
    expected = torch.tensor([[5.0, 1.0, 1.0, 2.5], [2.0, 0.5, 1.0, 1.5]])
    assert torch.allclose(updated, expected)
    assert torch.equal(old[:, 2:], torch.zeros(2, 2))


def test_hinge_averages_only_violations():
    good = torch.tensor([[3.0, 1.0], [0.5, 0.2], [1.0, 0.0]])
    bad = torch.tensor([[1.0, 2.0], [0.4, 0.1], [2.0, 0.0]])
    # gaps with margin 0.3: 2 + .3 − 3 = −0.7; .4 + .3 − .5 = 0.2; 2 + .3 − 1 = 1.3
    assert hinge(good, bad, 0.3).item() == pytest.approx((0.2 + 1.3) / 2)
    assert hinge(good, bad - 10, 0.3).item() == 0.0


def naive_supcon(features, labels, temperature):
    flat = [features[i, v] for v in range(features.shape[1]) for i in range(features.shape[0])]
    flat_labels = [labels[i].item() for v in range(features.shape[1]) for i in range(features.shape[0])]
    total = 0.0
    for a, anchor in enumerate(flat):
        scores = [float(anchor @ other) / temperature for other in flat]
        log_norm = math.log(sum(math.exp(s) for k, s in enumerate(scores) if k != a))
        positives = [k for k in range(len(flat)) if k != a and flat_labels[k] == flat_labels[a]]
        total += -sum(scores[p] - log_norm for p in positives) / len(positives)
    return total / features.shape[1]  # each sample's anchors averaged over its views


def test_supcon_matches_a_direct_loop():
    torch.manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(5, 2, 3, dtype=torch.float64), dim=2)
    labels = torch.tensor([0, 1, 0, 2, 1])
    assert supcon_loss(features, labels, 5.0).item() == pytest.approx(naive_supcon(features, labels, 5.0))
    assert supcon_loss(features, labels, 0.5).item() == pytest.approx(naive_supcon(features, labels, 0.5))
    four_views = torch.nn.functional.normalize(torch.randn(5, 4, 3, dtype=torch.float64), dim=2)
    assert supcon_loss(four_views, labels, 5.0).item() == pytest.approx(naive_supcon(four_views, labels, 5.0))


def test_supcon_scale_does_not_grow_with_the_number_of_views():
    """V identical copies of each sample's two views: the per-sample mean over views, hence the loss,
    changes only through the extra positives' share of the denominator, not by a factor of V."""
    torch.manual_seed(1)
    two = torch.nn.functional.normalize(torch.randn(6, 2, 4, dtype=torch.float64), dim=2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    per_sample = supcon_loss(two, labels, 1.0).item() / 6
    four = supcon_loss(two.repeat(1, 2, 1), labels, 1.0).item() / 6
    assert 0.5 * per_sample < four < 2 * per_sample


def test_first_occurrences():
    assert first_occurrences(torch.tensor([3, 1, 3, 2, 1])).tolist() == [True, True, False, True, False]


def xder_stub(capacity, classes_per_task=2):
    model = XDer.__new__(XDer)
    torch.nn.Module.__init__(model)
    model.classes_per_task, model.device = classes_per_task, torch.device("cpu")
    model.buffer = SimpleNamespace(capacity=capacity, size=0)
    return model


def test_balanced_subset_keeps_the_first_per_class():
    labels = torch.tensor([0, 1, 0, 0, 2, 1, 2, 2, 2])
    kept = xder_stub(9).balanced_subset(labels, per_class=2)
    assert kept.tolist() == [0, 1, 2, 4, 5, 6]


def test_new_entries_fill_the_free_slots_class_balanced():
    torch.manual_seed(0)
    model = xder_stub(capacity=10)
    model.buffer.size = 3
    labels = torch.tensor([4] * 10 + [5] * 10)
    chosen = model.new_entries(labels)
    counts = torch.bincount(labels[chosen], minlength=6)[4:].tolist()
    assert len(chosen) == 7 and sorted(counts) == [3, 4] and len(set(chosen.tolist())) == 7


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


def test_rank_within_class():
    from models.xder import rank_within_class
    assert rank_within_class(torch.tensor([2, 0, 2, 2, 0, 1])).tolist() == [0, 0, 1, 2, 1, 0]


def test_update_future_logits_with_a_non_positive_target_keeps_the_reference_behaviour():
    """γ = 0.85. Target −2, transplant max −1: scale 1.7, the max becomes −1.7, above the target.
    Target −1, transplant [2, −4]: scale −0.425 flips signs, −4 becomes 1.7, above the target."""
    old = torch.tensor([[-2.0, 0.5, 0.0, 0.0], [0.3, -1.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    new = torch.tensor([[9.0, 9.0, -1.0, -3.0], [9.0, 9.0, 2.0, -4.0], [9.0, 9.0, 6.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    updated = update_future_logits(old, new, labels, start=2, end=4, gamma=0.85)
    torch.testing.assert_close(updated[0, 2:], torch.tensor([-1.7, -5.1]))
    torch.testing.assert_close(updated[1, 2:], torch.tensor([-0.85, 1.7]))
    assert updated[0, 2:].max() > old[0, 0] and updated[1, 2:].max() > old[1, 1]
    torch.testing.assert_close(updated[2, 2:], torch.tensor([0.85 * 3.0, 0.85 * 3.0 / 6.0]))  # target 3 > 0
    assert updated[2, 2:].max() < old[2, 0]


def test_bounded_rescale_never_flips_or_magnifies_and_leaves_positive_targets_alone():
    """The same rows with the scale clamped to [0, 1]: 1.7 becomes 1 (transplant kept as is), −0.425
    becomes 0 (transplant zeroed); the row with target 3 > 0 is the reference one."""
    old = torch.tensor([[-2.0, 0.5, 0.0, 0.0], [0.3, -1.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    new = torch.tensor([[9.0, 9.0, -1.0, -3.0], [9.0, 9.0, 2.0, -4.0], [9.0, 9.0, 6.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    bounded = update_future_logits(old, new, labels, start=2, end=4, gamma=0.85, bounded=True)
    torch.testing.assert_close(bounded[0, 2:], new[0, 2:])
    torch.testing.assert_close(bounded[1, 2:], torch.zeros(2))
    torch.testing.assert_close(bounded[2], update_future_logits(old, new, labels, 2, 4, 0.85)[2])
    torch.manual_seed(0)
    old, new = torch.randn(200, 6), torch.randn(200, 6)
    labels = torch.randint(0, 2, (200,))
    out = update_future_logits(old, new, labels, start=2, end=6, gamma=0.85, bounded=True)[:, 2:]
    assert (out.abs() <= new[:, 2:].abs()).all() and (out * new[:, 2:] >= 0).all()
