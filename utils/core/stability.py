"""Stability through the stream (De Lange et al., ICLR 2023, "Continual evaluation for lifelong learning:
identifying the stability gap") from the accuracy curves of --eval_every.

Also the online-CL literature's two summaries of the same curve: the average anytime accuracy (AAA, Caccia et al.,
ICLR 2022, "New Insights on Reducing Abrupt Representation Change in Online Continual Learning": the mean over
every evaluation point; `anytime_accuracy`) and A_AUC (Koh et al., ICLR 2022, "Online Continual Learning on Class
Incremental Blurry Task Configuration with Anytime Inference", §3: the area under the accuracy curve over the
samples seen; `area_under_accuracy`).

A curve is a list of evaluation points {"step", "task", "epoch", "samples", "class_il": [accuracy per task, None for
tasks not yet trained on]}: "step" counts training steps over the whole stream, "samples" the stream samples seen
(each batch once, whatever --passes; absent from curves written before it), "task" and "epoch" are where the point
was taken (a point at step s of task t saw s steps, the last ones of task t; on a stream without boundaries the
task its segment stands for). Accuracies are percent; a metric that is undefined (one task only) is None.
"""
import numpy as np

RECOVERED_WITHIN = 1.0  # points of accuracy: "recovered" means back within this of the pre-switch value


def seen_mean(point):
    """Mean accuracy over the tasks the point has seen (those with a value)."""
    values = [a for a in point["class_il"] if a is not None]
    return float(np.mean(values)) if values else None


def anytime_accuracy(curve):
    """Average anytime accuracy: mean over evaluation points of the mean accuracy on seen tasks."""
    means = [m for m in map(seen_mean, curve) if m is not None]
    return float(np.mean(means)) if means else None


def area_under_accuracy(curve):
    """A_AUC = Σ_i f(n_i)·(n_i − n_{i−1}) / n_k, f(n_i) the mean accuracy on the seen tasks at the i-th point, taken
    after n_i samples (n_0 = 0): the area under the accuracy-over-samples curve, each point standing for the
    samples since the one before, over the samples seen. With points every Δn samples it is the mean of the points'
    accuracies, the authors' A_auc = np.mean(eval_results["test_acc"]) with an evaluation every EVAL_PERIOD
    samples (naver-ai/i-Blurry main.py); the paper's Σ f(i·Δn)·Δn over the same normalisation. None for a curve
    without sample counts."""
    points = [(p["samples"], seen_mean(p)) for p in curve if p.get("samples") is not None]
    points = [(n, f) for n, f in points if f is not None]
    if not points or points[-1][0] == 0:
        return None
    area, before = 0.0, 0
    for seen, accuracy in points:
        area += accuracy * (seen - before)
        before = seen
    return area / before


def min_accuracies(curve, n_tasks):
    """min-ACC of each task j < T−1: its lowest accuracy at a point taken after it was learned (during a
    later task); None for a task with no such point."""
    lows = []
    for task in range(n_tasks - 1):
        later = [p["class_il"][task] for p in curve if p["task"] > task and p["class_il"][task] is not None]
        lows.append(min(later) if later else None)
    return lows


def worst_case_accuracy(curve, n_tasks, final_row):
    """WC-ACC after the last task T: (1/T) · the last task's final accuracy + (1 − 1/T) · the mean min-ACC
    of the earlier tasks (De Lange et al., eq. 5); `final_row` is the accuracy matrix's last row."""
    if n_tasks < 2:
        return None
    lows = min_accuracies(curve, n_tasks)
    if any(low is None for low in lows):
        return None
    return final_row[-1] / n_tasks + (1 - 1 / n_tasks) * float(np.mean(lows))


def old_mean(point, task):
    """Mean accuracy over the tasks before `task`."""
    values = [point["class_il"][j] for j in range(task)]
    return None if any(v is None for v in values) else float(np.mean(values))


def stability_gaps(curve, n_tasks):
    """Per task switch t ≥ 1: {"task", "before", "minimum", "gap", "recovery_steps"}: the old tasks' mean
    accuracy at the last point before task t, its minimum over task t's first epoch, their difference, and
    the steps from the switch until it is back within RECOVERED_WITHIN of the value before (None: never
    within task t)."""
    gaps = []
    for task in range(1, n_tasks):
        before = [p for p in curve if p["task"] < task]
        during = [p for p in curve if p["task"] == task]
        first_epoch = [p for p in during if p["epoch"] == 0]
        if not before or not first_epoch:
            continue
        reference = old_mean(before[-1], task)
        start = before[-1]["step"]
        lowest = min(first_epoch, key=lambda p: old_mean(p, task))
        minimum = old_mean(lowest, task)
        back = next((p for p in during if p["step"] >= lowest["step"]
                     and old_mean(p, task) >= reference - RECOVERED_WITHIN), None)
        gaps.append({"task": task, "before": reference, "minimum": minimum, "gap": reference - minimum,
                     "recovery_steps": None if back is None else back["step"] - start})
    return gaps


def summarize_stability(curve, n_tasks, final_row):
    """The results line's stability fields from a curve (all None without one)."""
    if not curve:
        return {"anytime_accuracy": None, "a_auc": None, "min_acc": None, "wc_acc": None, "stability_gap": None}
    lows = min_accuracies(curve, n_tasks)
    known = [low for low in lows if low is not None]
    gaps = stability_gaps(curve, n_tasks)
    return {"anytime_accuracy": anytime_accuracy(curve), "a_auc": area_under_accuracy(curve),
            "min_acc": {"per_task": lows, "mean": float(np.mean(known)) if known else None},
            "wc_acc": worst_case_accuracy(curve, n_tasks, final_row),
            "stability_gap": {"per_switch": gaps, "mean": mean_gap(gaps), **recovery(gaps)}}


def mean_gap(gaps):
    return float(np.mean([g["gap"] for g in gaps])) if gaps else None


def recovery(gaps):
    """A drop that recovers within its task is the stability gap; one that never does is forgetting, though both
    are a number at a switch: the share of switches (%) whose old tasks recover within their task
    ("recovered_share"), and the mean gap of the switches that recover and of those that do not."""
    recovered = [g for g in gaps if g["recovery_steps"] is not None]
    unrecovered = [g for g in gaps if g["recovery_steps"] is None]
    return {"recovered_share": 100 * len(recovered) / len(gaps) if gaps else None,
            "mean_recovered": mean_gap(recovered), "mean_unrecovered": mean_gap(unrecovered)}
