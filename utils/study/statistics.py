"""The statistics of a table's comparisons: Welch's t-test of two groups of seeds, the 95 % confidence interval of
a mean (Student's t) and of a difference of means (Welch–Satterthwaite degrees of freedom), the effect size as
Hedges' g (Cohen's d over the pooled standard deviation, times the small-sample correction 1 − 3/(4(n₁+n₂)−9);
Hedges & Olkin 1985), and the corrections of a table's p-values for the number of tests it makes: Holm's
step-down (Holm 1979; controls the family-wise error, the default) and Benjamini–Hochberg's step-up (1995;
controls the false discovery rate)."""
import math

import numpy as np

LEVEL = 0.95


def welch(first, second):
    """(difference of means, two-sided Welch t-test p) of two samples; p is None below 2 runs each."""
    from scipy import stats

    difference = float(np.mean(first) - np.mean(second))
    if len(first) < 2 or len(second) < 2:
        return difference, None
    p = stats.ttest_ind(first, second, equal_var=False).pvalue
    return difference, (None if math.isnan(p) else float(p))


def t_quantile(dof, level=LEVEL):
    from scipy import stats

    return float(stats.t.ppf((1 + level) / 2, dof))


def mean_interval(values, level=LEVEL):
    """(low, high) of the mean's confidence interval, or None below 2 values."""
    if len(values) < 2:
        return None
    mean, half = float(np.mean(values)), t_quantile(len(values) - 1, level) * np.std(values, ddof=1) / math.sqrt(
        len(values))
    return mean - half, mean + half


def difference_interval(first, second, level=LEVEL):
    """(low, high) of the confidence interval of mean(first) − mean(second) with Welch's standard error and
    degrees of freedom, or None below 2 values each."""
    if len(first) < 2 or len(second) < 2:
        return None
    difference = float(np.mean(first) - np.mean(second))
    a, b = np.var(first, ddof=1) / len(first), np.var(second, ddof=1) / len(second)
    if a + b == 0:
        return difference, difference
    dof = (a + b) ** 2 / (a ** 2 / (len(first) - 1) + b ** 2 / (len(second) - 1))
    half = t_quantile(dof, level) * math.sqrt(a + b)
    return difference - half, difference + half


def hedges_g(first, second):
    """Hedges' g of first against second, or None below 2 values each or with no spread."""
    n, m = len(first), len(second)
    if n < 2 or m < 2:
        return None
    pooled = math.sqrt(((n - 1) * np.var(first, ddof=1) + (m - 1) * np.var(second, ddof=1)) / (n + m - 2))
    if pooled == 0:
        return None
    return float((np.mean(first) - np.mean(second)) / pooled * (1 - 3 / (4 * (n + m) - 9)))


def holm(p_values):
    """Holm's adjusted p-values (None stays None and is no test): the i-th smallest of m is
    max over j ≤ i of min(1, (m − j + 1) p_(j))."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted, running = list(p_values), 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values):
    """Benjamini–Hochberg's adjusted p-values (None stays None): the i-th smallest of m is
    min over j ≥ i of min(1, m p_(j) / j)."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted, running = list(p_values), 1.0
    for rank in range(len(tested) - 1, -1, -1):
        p, index = tested[rank]
        running = min(running, len(tested) * p / (rank + 1))
        adjusted[index] = running
    return adjusted


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg, "none": list}
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "no correction"}
