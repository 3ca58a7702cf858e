"""Mask forward values and gradients against the formulas of the README's mask table (and each mask's
docstring), in float64."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import counts_at_a_step, mask_at_a_step
from utils.core.label_counts import LabelCounts
from utils.core.masks import MASKS, scope_names
from utils.core.masks.base import build_mask
from utils.core.masks.functional import BUFFER_SCOPES, SCOPES, Position, masked_cross_entropy

LOGITS = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.3, 1.5, -2.0, 0.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 1])
KEEP = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)


def loss_and_grad(name, value=None, logits=LOGITS, keep=KEEP, labels=LABELS, **options):
    z = logits.clone().requires_grad_(True)
    loss = masked_cross_entropy(z.double(), labels, keep, build_mask(name, value, **options))
    loss.backward()
    return loss.item(), z.grad.numpy()


def reference(z_hat, labels):
    """CE of already-masked logits and the softmax p of each row (numpy, float64)."""
    z_hat = np.asarray(z_hat, dtype=float)
    shifted = z_hat - z_hat.max(1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(1))
    loss = np.mean(log_norm - shifted[np.arange(len(labels)), labels])
    return loss, np.exp(shifted - log_norm[:, None])


def onehot(labels, n):
    return np.eye(n)[labels]


def test_registered_masks():
    assert {"balanced", "general", "ninf", "none", "stopgrad"} <= set(MASKS.names())
    with pytest.raises(ValueError, match=f"unknown mask 'bogus' \\(choose from {', '.join(MASKS.names())}\\)"):
        build_mask("bogus")


def test_none_is_plain_cross_entropy():
    loss, grad = loss_and_grad("none")
    ref, p = reference(LOGITS.numpy(), LABELS.numpy())
    assert loss == pytest.approx(ref)
    np.testing.assert_allclose(grad, (p - onehot(LABELS.numpy(), 4)) / 2, atol=1e-12)


@pytest.mark.parametrize("m", [0.0, -3.0, 2.5, 1e4])
def test_general_replaces_masked_logits_by_constant(m):
    loss, grad = loss_and_grad("general", m)
    z_hat = np.where(KEEP.numpy(), LOGITS.numpy(), m)
    ref, p = reference(z_hat, LABELS.numpy())
    assert loss == pytest.approx(ref, rel=1e-9)
    expected = np.where(KEEP.numpy(), (p - onehot(LABELS.numpy(), 4)) / 2, 0.0)
    np.testing.assert_allclose(grad, expected, atol=1e-12)
    assert np.all(np.isfinite(grad))


def test_large_m_pushes_kept_classes_harder():
    _, grad_small = loss_and_grad("general", -5.0)
    _, grad_large = loss_and_grad("general", 5.0)
    def label_grads(g):
        return np.abs(g[np.arange(2), LABELS.numpy()])
    assert np.all(label_grads(grad_large) > label_grads(grad_small))


def test_ninf_is_softmax_over_kept_classes_and_equals_general_minus_inf():
    loss, grad = loss_and_grad("ninf")
    kept = LOGITS.numpy()[:, :2]
    ref, p = reference(kept, LABELS.numpy())
    assert loss == pytest.approx(ref)
    np.testing.assert_allclose(grad[:, :2], (p - onehot(LABELS.numpy(), 2)) / 2, atol=1e-12)
    assert np.all(grad[:, 2:] == 0)
    loss_general, grad_general = loss_and_grad("general", -math.inf)
    assert loss_general == pytest.approx(loss)
    np.testing.assert_allclose(grad_general, grad)


@pytest.mark.parametrize("name,value", [("ninf", None), ("general", -math.inf), ("stopgrad", -math.inf)])
def test_no_nan_when_only_the_label_survives(name, value):
    keep = torch.zeros(2, 4, dtype=torch.bool)
    logits = torch.tensor([[1e4, -1e4, 50.0, -50.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    loss, grad = loss_and_grad(name, value, logits=logits, keep=keep)
    assert loss == 0.0
    assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_masked_label_is_always_kept():
    keep = torch.tensor([[0, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.bool)
    loss, grad = loss_and_grad("ninf", keep=keep)
    ref, _ = reference(LOGITS.numpy(), LABELS.numpy())
    assert loss == pytest.approx(ref)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("m", [0.0, 1.5, -2.0])
def test_stopgrad_cuts_only_the_gradient(m):
    loss, grad = loss_and_grad("stopgrad", m)
    z_hat = np.where(KEEP.numpy(), LOGITS.numpy(), LOGITS.numpy() + m)
    ref, p = reference(z_hat, LABELS.numpy())
    assert loss == pytest.approx(ref)
    expected = np.where(KEEP.numpy(), (p - onehot(LABELS.numpy(), 4)) / 2, 0.0)
    np.testing.assert_allclose(grad, expected, atol=1e-12)
    if m == 0.0:
        assert loss == pytest.approx(loss_and_grad("none")[0])


def test_balanced_adds_log_counts_and_masks_absent_classes():
    counts = [10.0, 5.0, 0.0, 2.0]
    loss, grad = loss_and_grad("balanced", counts=counts_at_a_step(LABELS, 4, distribution=counts))
    with np.errstate(divide="ignore"):
        z_hat = LOGITS.numpy() + np.log(counts)
    ref, p = reference(z_hat, LABELS.numpy())
    assert loss == pytest.approx(ref)
    np.testing.assert_allclose(grad, (p - onehot(LABELS.numpy(), 4)) / 2, atol=1e-12)
    assert np.all(grad[:, 2] == 0)


def test_balanced_before_a_task_start_refuses():
    with pytest.raises(RuntimeError, match="class counts"):
        loss_and_grad("balanced", counts=LabelCounts(torch.zeros(4)))


@pytest.mark.parametrize("name", MASKS.names())
def test_masks_never_write_into_the_callers_tensor(name):
    logits = LOGITS.clone()
    value = 1.0 if MASKS.get(name).USES_VALUE else None
    mask = mask_at_a_step(name, value, LABELS, LOGITS.shape[1])
    out = mask(logits, KEEP)
    assert torch.equal(logits, LOGITS)
    assert out.data_ptr() != logits.data_ptr() or name == "none"


def test_masked_cross_entropy_is_fp32_under_low_precision_logits():
    logits = LOGITS.to(torch.bfloat16)
    loss = masked_cross_entropy(logits, LABELS, KEEP, build_mask("ninf"))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(F.cross_entropy(logits.float()[:, :2], LABELS).item())


def test_task_scope_keeps_the_labels_own_task():
    keep = SCOPES["task"](torch.tensor([0, 3, 5]), Position(task=2, classes_per_task=2, n_classes=6, seen=None))
    expected = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(keep, expected)


def test_the_parser_offers_the_scope_tables_names():
    assert scope_names("SCOPES") == tuple(SCOPES) == ("task", "ace", "new", "batch", "recent")
    assert scope_names("BUFFER_SCOPES") == tuple(BUFFER_SCOPES) == ("task", "past")


def test_ace_scope_keeps_batch_classes_and_unseen_ones():
    seen = torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.bool)
    keep = SCOPES["ace"](torch.tensor([2, 3, 3]), Position(task=1, classes_per_task=2, n_classes=6, seen=seen))
    assert torch.equal(keep, torch.tensor([[0, 0, 1, 1, 1, 1]] * 3, dtype=torch.bool))
    first_task = Position(task=0, classes_per_task=2, n_classes=6, seen=seen)
    assert SCOPES["ace"](torch.tensor([0, 1]), first_task).all()
    seen_0_1 = torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool)  # a task-free stream: the ace scope from the start
    second_batch = SCOPES["ace"](torch.tensor([0]), first_task._replace(task_free=True, seen=seen_0_1))
    assert second_batch.tolist() == [[True, False, True, True, True, True]]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan"])
def test_python_api_refuses_the_values_the_command_line_refuses(value):
    with pytest.raises(ValueError, match=r"^argument --mask_value: 'nan' is not allowed|^argument --mask_value: 'inf'"):
        build_mask("general", m=value)


@pytest.mark.parametrize("name", ["none", "ninf", "balanced"])
def test_a_mask_value_for_a_mask_without_one_is_refused(name):
    with pytest.raises(ValueError, match=f"--mask_value: 5.0 is not allowed with mask {name}.*general, stopgrad"):
        build_mask(name, m=5.0)
    assert build_mask(name).m is None
    assert build_mask("general").m == -3.0 and build_mask("stopgrad", -math.inf).m == -math.inf
