"""backbone/heads.py: the cosine head (ER-ACE's original head) against the formula, and --head for any model."""

import pytest
import torch
from torch import nn

from backbone.heads import CosineClassifier, with_head
from backbone.mlp import MLP
from tests.helpers import build_model, parse


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
