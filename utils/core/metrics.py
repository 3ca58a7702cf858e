"""Continual-learning metrics of an accuracy matrix R (percent), R[i][j] = accuracy on task j
after training task i. Entries above the diagonal (future tasks) are None unless the run was made
with --eval_future. A metric that is undefined (one task, no future rows) is None.

Below, where Class-IL predictions go after a task: the task-confusion matrix (rows: the true task of a test
image, columns: the task of the predicted class), accuracy on old and new classes, and the recency bias (the
share of old-task test images predicted as a class of the newest task)."""
import numpy as np

SUMMARY_METRICS = ("final_avg", "forgetting", "bwt", "fwt", "plasticity", "stability")  # besides "matrix"


def accuracy(correct, total):
    """Percent from counts, exact where the quotient is (4/5 -> 80.0)."""
    return 100 * int(correct) / int(total)


def _mean(values):
    values = list(values)
    return float(np.mean(values)) if values else None


def nan_array(rows):
    """Nested lists of numbers (any depth) as a float array, None read as NaN."""
    if isinstance(rows, (list, tuple)):
        return np.array([nan_array(row) for row in rows], dtype=float)
    return np.nan if rows is None else float(rows)


def final_average(R):
    """mean_j R[T−1][j]."""
    return float(nan_array(R)[-1].mean())


def forgetting(R):
    """mean_{j<T−1} (max_{j≤i<T−1} R[i][j] − R[T−1][j]) (Chaudhry et al. 2018): the best accuracy a
    task had once learned, minus its final one."""
    R = nan_array(R)
    T = len(R)
    return _mean(R[j:T - 1, j].max() - R[T - 1, j] for j in range(T - 1))


def backward_transfer(R):
    """BWT = mean_{j<T−1} (R[T−1][j] − R[j][j]) (Lopez-Paz & Ranzato 2017)."""
    R = nan_array(R)
    T = len(R)
    return _mean(R[T - 1, j] - R[j, j] for j in range(T - 1))


def forward_transfer(R, baseline):
    """FWT = mean_{j≥1} (R[j−1][j] − b_j), b_j = accuracy of the randomly initialised network (GEM);
    None without a baseline or the future entries (a run without --eval_future)."""
    R = nan_array(R)
    if baseline is None or any(np.isnan(R[j - 1, j]) for j in range(1, len(R))):
        return None
    return _mean(R[j - 1, j] - baseline[j] for j in range(1, len(R)))


def plasticity(R):
    """mean_t R[t][t]: accuracy on each task right after learning it."""
    return float(np.mean(np.diag(nan_array(R))))


def stability(R):
    """mean_{t≥1} mean_{j<t} R[t][j]: accuracy kept on old tasks."""
    R = nan_array(R)
    return _mean(R[t, :t].mean() for t in range(1, len(R)))


def summarize(R, baseline):
    """Every metric of one accuracy matrix, as stored in the results (future entries None or numbers)."""
    return {"matrix": [list(row) for row in R], "final_avg": final_average(R),
            "forgetting": forgetting(R), "bwt": backward_transfer(R), "fwt": forward_transfer(R, baseline),
            "plasticity": plasticity(R), "stability": stability(R)}


def task_confusion(counts):
    """Row-normalised percentages of a count matrix counts[true task][predicted task]."""
    return [[100 * c / sum(row) if sum(row) else None for c in row] for row in counts]


def recency_bias(counts):
    """% of the old tasks' test images (rows < newest) predicted as a class of the newest task (the last
    column); None after the first task."""
    newest = len(counts) - 1
    old = counts[:newest]
    total = sum(sum(row) for row in old)
    return 100 * sum(row[newest] for row in old) / total if total else None


def old_new_accuracy(correct, totals):
    """(% correct over the old tasks' test images, % over the newest task's), from per-task counts."""
    old_total = sum(totals[:-1])
    old = 100 * sum(correct[:-1]) / old_total if old_total else None
    return old, 100 * correct[-1] / totals[-1]
