"""backbone/heads.py: the cosine head (ER-ACE's original head) against the formula, and --head for any model."""

import math

import pytest
import torch
from torch import nn

from backbone.heads import CosineClassifier, with_head
from backbone.mlp import MLP
from models import MODELS
from tests.helpers import build_model, model_flags, parse, run_main


def test_cosine_head_is_ten_times_the_cosine_similarity():
    torch.manual_seed(0)
    head = CosineClassifier(5, 3)
    features = torch.randn(4, 5)
    weights = head.weight.detach()
    expected = torch.tensor([[10 * float(f @ w) / (f.norm() * w.norm()) for w in weights] for f in features])
    torch.testing.assert_close(head(features), expected, rtol=1e-4, atol=1e-4)
    assert [name for name, _ in head.named_parameters()] == ["weight"]


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


def test_er_ace_uses_the_cosine_head_by_default_and_any_model_can():
    assert parse("--model", "er_ace", "--buffer_size", "10")[0].head == "cosine"
    assert parse("--model", "er_ace", "--buffer_size", "10", "--head", "linear")[0].head == "linear"
    assert parse("--model", "der", "--buffer_size", "10")[0].head == "linear"
    model, _ = build_model("--model", "er_ace", "--buffer_size", "10")
    assert isinstance(model.net.net.classifier, CosineClassifier)
    model, _ = build_model("--model", "der", "--buffer_size", "10", "--head", "cosine")
    assert isinstance(model.net.net.classifier, CosineClassifier)
    model, _ = build_model("--model", "er_ace", "--buffer_size", "10", "--head", "linear")
    assert isinstance(model.net.net.classifier, nn.Linear)


def test_the_simplex_head_is_a_fixed_regular_simplex():
    head = with_head(MLP(64, 10), "rpc").classifier
    vertices = head.weight[:, :9]
    gram = vertices @ vertices.T
    assert torch.allclose(gram.diagonal(), torch.ones(10), atol=1e-6)
    off = gram[~torch.eye(10, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1 / 9), atol=1e-6)  # equiangular, centred at 0
    assert torch.all(head.weight[:, 9:] == 0) and not list(head.parameters())


def test_the_fno_head_is_non_negative_orthogonal_with_one_trained_scale():
    torch.manual_seed(0)
    head = with_head(MLP(64, 10), "fno").classifier
    base = head.base
    assert torch.all(base >= 0) and torch.allclose(base @ base.T, torch.eye(10), atol=1e-6)
    assert sorted((base > 0).sum(1).tolist()) == [10] * 10  # 100 features, 10 disjoint blocks of 10
    assert [name for name, _ in head.named_parameters()] == ["scale"]
    features = torch.rand(4, 100)
    assert torch.allclose(head(features), features @ base.T)


@pytest.mark.parametrize("head", ["rpc", "fno"])
@pytest.mark.parametrize("model", [n for n in MODELS.names() if n != "lucir"])  # LUCIR's own head: its tests
def test_every_model_trains_with_a_fixed_head(tmp_path, model, head):
    record = run_main(tmp_path, "--model", model, *model_flags(model), "--n_epochs", "1", "--head", head)
    assert record["args"]["head"] == head and math.isfinite(record["class_il"]["final_avg"])
    assert record["task_il"]["final_avg"] > 55  # chance: 50


@pytest.mark.parametrize("head", ["rpc", "fno"])
def test_fixed_heads_never_change_while_a_model_trains(head):
    model, dataset = build_model("--model", "er", "--buffer_size", "20", "--head", head)
    fixed = dict(model.net.net.classifier.named_buffers())
    before = {name: tensor.clone() for name, tensor in fixed.items()}
    indices = dataset.task_indices(0)[:10]
    model.begin_task(0, dataset.splits.train_labels[indices])
    for _ in range(3):
        model.observe(dataset.splits.train_images[indices], dataset.splits.train_labels[indices])
    assert all(torch.equal(before[name], fixed[name]) for name in fixed)


def test_a_fixed_head_too_wide_for_the_backbone_is_one_line(tmp_path, capsys):
    import main
    from tests.test_cifar100_tinyimg import write_cifar100
    write_cifar100(tmp_path)
    assert main.main(["--model", "er", "--dataset", "seq-cifar100", "--nf", "2", "--buffer_size", "20", "--head",
                      "rpc", "--data_path", str(tmp_path), "--results_path", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "argument --head: rpc needs at least 99 features for 100 classes" in err and err.count("\n") == 1
