"""Metrics against hand-computed values."""
import pytest

from utils.core.metrics import (
    backward_transfer,
    final_average,
    forgetting,
    forward_transfer,
    plasticity,
    stability,
    summarize,
)

# R[i][j]: accuracy on task j after training task i.
R = [[90.0, 10.0, 5.0],
     [60.0, 80.0, 20.0],
     [40.0, 70.0, 85.0]]
BASELINE = [50.0, 12.0, 8.0]


def test_final_average():
    assert final_average(R) == pytest.approx((40 + 70 + 85) / 3)


def test_forgetting():
    # task 0: max(90, 60) − 40 = 50; task 1: max(10, 80) − 70 = 10
    assert forgetting(R) == pytest.approx(30.0)


def test_backward_transfer():
    # (40 − 90 + 70 − 80) / 2
    assert backward_transfer(R) == pytest.approx(-30.0)


def test_forward_transfer():
    # (R[0][1] − b1 + R[1][2] − b2) / 2 = (10 − 12 + 20 − 8) / 2
    assert forward_transfer(R, BASELINE) == pytest.approx(5.0)


def test_plasticity_and_stability():
    assert plasticity(R) == pytest.approx((90 + 80 + 85) / 3)
    # t=1: mean(60) ; t=2: mean(40, 70) = 55
    assert stability(R) == pytest.approx((60 + 55) / 2)


def test_single_task_has_no_transfer_metrics():
    summary = summarize([[75.0]], [10.0])
    assert summary["final_avg"] == 75.0
    assert summary["forgetting"] is None and summary["bwt"] is None and summary["fwt"] is None
    assert summary["stability"] is None and summary["plasticity"] == 75.0


def test_without_future_rows_fwt_is_none_and_the_rest_unchanged():
    lower = [[90.0, None, None], [60.0, 80.0, None], [40.0, 70.0, 85.0]]
    summary = summarize(lower, None)
    assert summary["fwt"] is None and summary["matrix"] == lower
    full = summarize(R, BASELINE)
    for name in ("final_avg", "forgetting", "bwt", "plasticity", "stability"):
        assert summary[name] == pytest.approx(full[name])


def test_forgetting_ignores_accuracy_before_a_task_was_learned():
    # task 1 scored 95 as a future task, before training on it: not counted as "once learned"
    assert forgetting([[90.0, 95.0, 0.0], [60.0, 80.0, 0.0], [40.0, 70.0, 85.0]]) == pytest.approx((50 + 10) / 2)
