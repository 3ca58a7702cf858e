"""Non-finite steps are decided on the device and read later: under --nan_policy skip such a step leaves the
parameters as they were and is counted at the read; under stop the read names the first one and its terms."""
import pytest
import torch

from models.base import NonFiniteLoss
from tests.test_models import build


def parameters(model):
    return [p.detach().clone() for p in model.net.parameters()]


def steps(model, *values):
    """One model.step per value, on a loss term that is finite except where the value is not."""
    for value in values:
        weight = model.net.net[1].weight
        model.step({"ce": weight.sum() * 0 + (weight ** 2).sum() * value, "other": torch.tensor(1.0)},
                   torch.zeros(1, model.n_classes), torch.zeros(1, dtype=torch.long))


def test_skip_leaves_the_parameters_of_a_non_finite_step_and_counts_it_at_the_read():
    model = build("er", "--nan_policy", "skip")
    before = parameters(model)
    steps(model, float("nan"), float("inf"))
    assert all(torch.equal(a, b) for a, b in zip(before, parameters(model)))
    steps(model, 1.0)
    assert not torch.equal(before[0], parameters(model)[0])
    model.read_finite()
    assert model.skipped_steps == 2
    model.read_finite()
    assert model.skipped_steps == 2


def test_stop_names_the_first_non_finite_step_of_the_window_and_its_terms():
    model = build("er")
    steps(model, 1.0, 1.0)
    model.read_finite()
    steps(model, 1.0, float("nan"), 1.0, float("inf"))
    with pytest.raises(NonFiniteLoss) as error:
        model.read_finite()
    assert error.value.index == 1 and "ce=nan" in str(error.value) and "other=1" in str(error.value)
    model.read_finite()
