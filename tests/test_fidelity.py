"""ER-ACE's cosine head, X-DER's BatchNorm alignment, hinge flags and SPKD term (issue 10), on
hand-made tensors and on a small BatchNorm network trained on seq-digits."""
import math

import pytest
import torch
from torch import nn

import main
import models.xder
from backbone.heads import CosineClassifier, with_head
from backbone.mlp import MLP
from models.xder_losses import similarity_preserving_loss


def test_cosine_head_is_ten_times_the_cosine_similarity():
    torch.manual_seed(0)
    head = CosineClassifier(5, 3)
    features = torch.randn(4, 5)
    weights = head.weight.detach()
    expected = torch.tensor([[10 * float(f @ w) / (f.norm() * w.norm()) for w in weights] for f in features])
    torch.testing.assert_close(head(features), expected, rtol=1e-4, atol=1e-4)
    assert [name for name, _ in head.named_parameters()] == ["weight"]  # no bias


def test_cosine_head_is_bounded_and_ignores_the_feature_norm():
    torch.manual_seed(1)
    head = CosineClassifier(8, 6)
    features = torch.randn(50, 8) * 100
    out = head(features)
    assert out.abs().max() <= 10 + 1e-4
    torch.testing.assert_close(head(features * 0.01), out, rtol=1e-3, atol=1e-3)
    aligned = head(head.weight.detach()[:1] * 3)  # a feature along class 0's weight scores 10 there
    assert aligned[0, 0].item() == pytest.approx(10.0, abs=1e-3) and aligned.argmax().item() == 0
    assert torch.isfinite(head(torch.zeros(2, 8))).all()


def test_with_head_replaces_the_classifier_with_one_of_the_same_shape():
    linear = MLP(64, 10)
    assert with_head(linear, "linear").classifier.__class__ is nn.Linear
    cosine = with_head(MLP(64, 10), "cosine").classifier
    assert isinstance(cosine, CosineClassifier) and (cosine.in_features, cosine.out_features) == (100, 10)


def parse(*argv):
    args, model_cls, dataset_cls = main.parse_args(list(argv))
    return args, model_cls, dataset_cls


def build(*argv, backbone=None):
    args, model_cls, dataset_cls = parse(*argv, "--device", "cpu")
    dataset = dataset_cls(args)
    dataset.prepare("cpu")
    return model_cls(backbone or dataset.get_backbone(), args, dataset, "cpu"), dataset


def test_er_ace_uses_the_cosine_head_by_default_and_any_model_can():
    assert parse("--model", "er_ace", "--buffer_size", "10")[0].head == "cosine"
    assert parse("--model", "er_ace", "--buffer_size", "10", "--head", "linear")[0].head == "linear"
    assert parse("--model", "der", "--buffer_size", "10")[0].head == "linear"
    model, _ = build("--model", "er_ace", "--buffer_size", "10")
    assert isinstance(model.net.net.classifier, CosineClassifier)
    model, _ = build("--model", "der", "--buffer_size", "10", "--head", "cosine")
    assert isinstance(model.net.net.classifier, CosineClassifier)
    model, _ = build("--model", "er_ace", "--buffer_size", "10", "--head", "linear")
    assert isinstance(model.net.net.classifier, nn.Linear)


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
    assert similarity_preserving_loss(a, 2 * a).abs().max() < 1e-6  # invariant to scale


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
    model, dataset = build("--model", "xder", "--buffer_size", "40", "--minibatch_size", "8", "--batch_size", "10",
                           *flags, backbone=net)
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
    model, dataset = build("--model", "xder", "--buffer_size", "40", "--batch_size", "16", backbone=net)
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
    model.step = lambda **terms: captured.update({k: v.item() for k, v in terms.items()})
    torch.manual_seed(5)
    model.observe(images, labels)
    return captured


def test_hinge_defaults_run_the_future_constraint_only():
    terms = observed_terms()
    assert "future_hinge" in terms and "past_hinge" not in terms and "dp" not in terms
    assert set(observed_terms("--no-future_constraint")) == set(terms) - {"future_hinge"}
    with_past = observed_terms("--past_constraint")
    assert with_past["past_hinge"] >= 0 and with_past["future_hinge"] == pytest.approx(terms["future_hinge"])


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
