"""models/xder.py and models/xder_losses.py against hand-computed tensors, and on a small BatchNorm network
trained on seq-digits: the future-logit rescaling, hinge constraints, SupCon and SPKD, BatchNorm alignment."""
import math

import pytest
import torch
from torch import nn

import models.xder
from models.xder import first_occurrences, hinge, update_future_logits
from models.xder_losses import similarity_preserving_loss, supcon_loss
from tests.helpers import build_model


def naive_spkd(a, b):
    def gram(z):
        g = z @ z.t()
        return g / g.norm(dim=1, keepdim=True)
    return float(((gram(a) - gram(b)) ** 2).sum()) / len(a) ** 2


def test_similarity_preserving_loss_matches_the_formula_and_broadcasts():
    torch.manual_seed(2)
    a, b = torch.randn(3, 2, 6, 4, dtype=torch.float64), torch.randn(3, 1, 6, 4, dtype=torch.float64)
    loss = similarity_preserving_loss(a, b)
    assert loss.shape == (3, 2)
    for h in range(3):
        for v in range(2):
            assert loss[h, v].item() == pytest.approx(naive_spkd(a[h, v].float(), b[h, 0].float()), rel=1e-5)
    assert similarity_preserving_loss(a, 2 * a).abs().max() < 1e-6


class BNNet(nn.Module):
    """Flatten → Linear → BatchNorm1d → ReLU → classifier: records each forward's batch size and
    whether BatchNorm was tracking statistics."""

    def __init__(self, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
        self.bn = nn.BatchNorm1d(16)
        self.classifier = nn.Linear(16, n_classes)
        self.calls, self.inputs = [], []

    def forward(self, x):
        self.calls.append((len(x), self.bn.track_running_stats))
        self.inputs.append(x)
        return self.classifier(torch.relu(self.bn(self.body(x))))


def xder_at_task_two(*flags):
    """An X-DER on seq-digits with a BatchNorm network, its buffer filled by task 0's end."""
    torch.manual_seed(0)
    net = BNNet(10)
    model, dataset = build_model("--model", "xder", "--buffer_size", "40", "--minibatch_size", "8",
                                 "--batch_size", "10", *flags, backbone=net)
    images, labels = dataset.splits.train_images, dataset.splits.train_labels
    first = dataset.task_indices(0)
    model.begin_task(0, labels[first])
    model.end_task(0, images[first], labels[first])
    second = dataset.task_indices(1)[:10]
    model.begin_task(1, labels[dataset.task_indices(1)])
    return model, net, images[second], labels[second]


def test_align_bn_only_the_first_draw_with_a_stream_slice_updates_statistics():
    model, net, images, labels = xder_at_task_two()
    before = net.bn.num_batches_tracked.item()
    net.calls.clear()
    model.observe(images, labels)
    views = (40 + 10) * 4  # SupCon: the 40 buffered (of 64 asked) + 10 stream samples, 4 views each
    assert net.calls == [(10, False), (8 + 8 // 1, True), (8, False), (views, False)]
    assert net.bn.num_batches_tracked.item() == before + 1


def test_without_align_bn_every_forward_updates_statistics():
    model, net, images, labels = xder_at_task_two("--no-align_bn")
    before = net.bn.num_batches_tracked.item()
    net.calls.clear()
    model.observe(images, labels)
    assert net.calls == [(10, True), (8, True), (8, True), (200, True)]
    assert net.bn.num_batches_tracked.item() == before + 4


def test_end_task_forwards_leave_statistics_alone_in_batches_of_batch_size():
    torch.manual_seed(0)
    net = BNNet(10)
    model, dataset = build_model("--model", "xder", "--buffer_size", "40", "--batch_size", "16", backbone=net)
    state = {k: v.clone() for k, v in net.bn.state_dict().items()}
    for task in (0, 1):
        chosen = dataset.task_indices(task)
        model.end_task(task, dataset.splits.train_images[chosen], dataset.splits.train_labels[chosen])
    assert all(torch.equal(state[k], v) for k, v in net.bn.state_dict().items())
    # task 0 stores 40 entries; task 1 keeps 20 of them, stores 20 new ones (16 + 4), then forwards
    # all 40 in a random order to refresh the 20 old ones: its batches mix both tasks, as in Mammoth
    assert net.calls == [(16, False), (16, False), (8, False), (16, False), (4, False)] + \
        [(16, False), (16, False), (8, False)]
    refreshed = torch.cat(net.inputs[-3:])  # seq-digits has no augmentation: inputs are normalised images
    entries = (refreshed[:, None] == dataset.normalize(model.buffer.images)[None]).flatten(2).all(2).int().argmax(1)
    assert sorted(entries.tolist()) == list(range(40))
    tasks_of_first_batch = model.buffer.labels[entries[:16]] // 2
    assert set(tasks_of_first_batch.tolist()) == {0, 1}


def test_bounded_rescale_reaches_every_rescaling(monkeypatch):
    """--bounded_rescale is passed to the three places that rescale: the new entries' past heads and
    the refresh at task end, and the refresh during observe; off by default."""
    real = models.xder.update_future_logits
    for flags, expected in (((), False), (("--bounded_rescale",), True)):
        seen = []

        def recording(*args, bounded=False):
            seen.append(bounded)
            return real(*args, bounded=bounded)
        monkeypatch.setattr(models.xder, "update_future_logits", recording)
        model, _, images, labels = xder_at_task_two(*flags)
        model.observe(images, labels)
        model.end_task(1, images, labels)
        assert len(seen) == 3 and set(seen) == {expected}


def observed_terms(*flags):
    """The loss terms of one X-DER step at task 2 (the same draws for every call)."""
    model, _, images, labels = xder_at_task_two(*flags)
    captured = {}

    def step(terms, logits, labels):
        captured.update({k: v.item() for k, v in terms.items()}, stream_logits=logits.detach())
    model.step = step
    torch.manual_seed(5)
    model.observe(images, labels)
    return captured


def test_hinge_defaults_run_the_future_constraint_only():
    terms = observed_terms()
    assert "future_hinge" in terms and "past_hinge" not in terms and "dp" not in terms
    assert set(observed_terms("--no-future_constraint")) == set(terms) - {"future_hinge"}
    with_past = observed_terms("--past_constraint")
    assert with_past["future_hinge"] == pytest.approx(terms["future_hinge"])
    # computed again: η · the mean over the stream rows that violate it of max(past probs) + margin − max(current
    # probs), the softmax over the 4 classes seen at task 1 (η 0.1, margin 0.3)
    probs = torch.softmax(with_past["stream_logits"][:, :4], dim=1)
    gaps = [float(p[:2].max() + 0.3 - p[2:].max()) for p in probs]
    violated = [gap for gap in gaps if gap > 0]
    assert violated and with_past["past_hinge"] == pytest.approx(0.1 * sum(violated) / len(violated), rel=1e-5)


def test_hinge_weight_scales_the_constraint_terms_and_the_margin_enters_them():
    base = observed_terms("--past_constraint", "--margin", "5")  # margin 5: every row violates both hinges
    double = observed_terms("--past_constraint", "--margin", "5", "--eta", "0.2")
    for name in ("future_hinge", "past_hinge"):
        assert base[name] > 0 and double[name] == pytest.approx(2 * base[name], rel=1e-5)
    wider = observed_terms("--past_constraint", "--margin", "6")
    for name in ("future_hinge", "past_hinge"):  # all rows violate: the mean gap grows by η·Δm = 0.1
        assert wider[name] - base[name] == pytest.approx(0.1, rel=1e-4)


def test_dp_term_appears_with_a_weight_and_is_linear_in_it():
    one = observed_terms("--dp_weight", "1")
    ten = observed_terms("--dp_weight", "10")
    assert one["dp"] > 0 and math.isfinite(one["dp"]) and ten["dp"] == pytest.approx(10 * one["dp"], rel=1e-5)
    assert one["supcon"] == pytest.approx(observed_terms()["supcon"])


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
    every = torch.ones(3, dtype=torch.bool)
    assert hinge(good, bad, 0.3, every).item() == pytest.approx((0.2 + 1.3) / 2)
    assert hinge(good, bad - 10, 0.3, every).item() == 0.0
    assert hinge(good, bad, 0.3, torch.tensor([True, True, False])).item() == pytest.approx(0.2)


def naive_supcon(features, labels, temperature):
    flat = [features[i, v] for v in range(features.shape[1]) for i in range(features.shape[0])]
    flat_labels = [labels[i].item() for v in range(features.shape[1]) for i in range(features.shape[0])]
    total = 0.0
    for a, anchor in enumerate(flat):
        scores = [float(anchor @ other) / temperature for other in flat]
        log_norm = math.log(sum(math.exp(s) for k, s in enumerate(scores) if k != a))
        positives = [k for k in range(len(flat)) if k != a and flat_labels[k] == flat_labels[a]]
        total += -sum(scores[p] - log_norm for p in positives) / len(positives)
    return total / features.shape[1]


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
    ratio = supcon_loss(two.repeat(1, 2, 1), labels, 1.0).item() / supcon_loss(two, labels, 1.0).item()
    expected = naive_supcon(two.repeat(1, 2, 1), labels, 1.0) / naive_supcon(two, labels, 1.0)
    assert ratio == pytest.approx(expected, rel=1e-9) and abs(ratio - 2 * expected) > 0.5  # summing views: 2×


def test_first_occurrences():
    unique, first_of = first_occurrences(torch.tensor([3, 1, 3, 2, 1]))
    assert unique.tolist() == [True, True, False, True, False] and first_of.tolist() == [0, 1, 0, 3, 1]


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
