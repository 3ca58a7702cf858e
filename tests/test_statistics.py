"""utils/study/statistics.py: Holm and Benjamini-Hochberg against a direct computation on known p-values, the
intervals against scipy's own, Hedges' g by hand (the report's columns: tests/test_report.py)."""
import math

import numpy as np
import pytest
from scipy import stats

from utils.study.statistics import benjamini_hochberg, difference_interval, hedges_g, holm, mean_interval

P = [0.01, 0.04, None, 0.03, 0.005]


def test_holm_by_hand():
    # sorted: 0.005 (×4), 0.01 (×3), 0.03 (×2), 0.04 (×1), each the running maximum
    assert holm(P) == pytest.approx([0.03, 0.06, None, 0.06, 0.02]) and holm(P)[2] is None
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_benjamini_hochberg_by_hand():
    # sorted: 0.005·4/1 = 0.02, 0.01·4/2 = 0.02, 0.03·4/3 = 0.04, 0.04·4/4 = 0.04, each the running minimum from the top
    assert benjamini_hochberg(P) == pytest.approx([0.02, 0.04, None, 0.04, 0.02])
    assert benjamini_hochberg([0.04, 0.01]) == pytest.approx([0.04, 0.02])


def test_intervals_are_scipys():
    first, second = np.array([50.0, 53.0, 59.0, 61.0]), np.array([40.0, 44.0, 48.0])
    low, high = mean_interval(first)
    expected = stats.t.interval(0.95, 3, loc=first.mean(), scale=stats.sem(first))
    assert (low, high) == pytest.approx(expected)
    result = stats.ttest_ind(first, second, equal_var=False)
    assert difference_interval(first, second) == pytest.approx(tuple(result.confidence_interval(0.95)))
    assert mean_interval([3.0]) is None and difference_interval([1.0, 2.0], [3.0]) is None


def test_hedges_g_by_hand():
    # means 54 and 44, variances 21 and 16 (n = 3 each): pooled sd √18.5, J = 1 − 3/(4·6 − 9) = 0.8
    assert hedges_g([50.0, 53.0, 59.0], [40.0, 44.0, 48.0]) == pytest.approx(10 / math.sqrt(18.5) * 0.8)
    assert hedges_g([1.0, 1.0], [1.0, 1.0]) is None
