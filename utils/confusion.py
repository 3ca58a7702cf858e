"""Where Class-IL predictions go after a task: the task-confusion matrix (rows: the true task of a test
image, columns: the task of the predicted class), accuracy on old and new classes, and the recency bias
(the share of old-task test images predicted as a class of the newest task)."""


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
