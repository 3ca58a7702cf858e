"""Figures of a report (matplotlib, PNG, no display): the mean accuracy matrix and task-confusion
matrix of each group, per-task curves (accuracy on the tasks seen so far, the stream CE's old-class
gradient mass; one line per mask, one panel per model), and final Class-IL and forgetting against the
mask value m where a grid varies it."""
import math
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
import numpy as np  # noqa: E402

from utils.study.groups import old_gradient_series, seen_task_accuracy  # noqa: E402
from utils.study.tables import mask_label  # noqa: E402

DPI = 100


def slug(text):
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def group_title(group):
    f = group.flags
    return f"{f.get('model')} | {mask_label(f)} | buffer {f.get('buffer_size')} | {f.get('dataset')}"


def save(figure, directory, name):
    path = os.path.join(directory, f"{slug(name)}.png")
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def annotated(axis, figure, matrix, title, xlabel, ylabel):
    shown = axis.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=100, cmap="viridis")
    for (i, j), value in np.ndenumerate(matrix):
        if not math.isnan(value):
            axis.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                      color="white" if value < 60 else "black")
    ticks = range(len(matrix))
    axis.set_xticks(ticks, [str(t + 1) for t in ticks])
    axis.set_yticks(ticks, [str(t + 1) for t in ticks])
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    return shown


def heatmap(group, directory, index):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    for axis, (setting, label) in zip(axes, (("class_il", "Class-IL"), ("task_il", "Task-IL"))):
        shown = annotated(axis, figure, group.mean_matrix(setting), f"{label} accuracy (%)", "evaluated task",
                          "after training task")
    figure.colorbar(shown, ax=axes, fraction=0.03, label="mean accuracy (%)")
    figure.suptitle(f"{group_title(group)} — mean of {group.n} runs")
    return save(figure, directory, f"matrix-{index:03d}-{group_title(group)}")


def confusion_heatmap(group, directory, index):
    """The final Class-IL task confusion: where each task's test images are predicted; None without it."""
    matrix = group.mean_confusion()
    if matrix is None:
        return None
    figure, axis = plt.subplots(figsize=(5.8, 4.6), layout="constrained")
    shown = annotated(axis, figure, matrix, "final task confusion (% of the row's test images)",
                      "task of the predicted class", "true task")
    figure.colorbar(shown, ax=axis, fraction=0.046, label="% of the true task's test images")
    figure.suptitle(f"{group_title(group)} — mean of {group.n} runs")
    return save(figure, directory, f"confusion-{index:03d}-{group_title(group)}")


def model_panels(groups, width):
    """For each (dataset, buffer size) of the groups: (dataset, buffer size, the figure, its groups, and
    per model (axis, model, the model's groups sorted by mask)): a panel per model, a line per mask."""
    settings = sorted({(g.flags.get("dataset"), g.flags.get("buffer_size")) for g in groups}, key=str)
    for dataset, buffer_size in settings:
        members = [g for g in groups if (g.flags.get("dataset"), g.flags.get("buffer_size")) == (dataset, buffer_size)]
        models = sorted({g.flags.get("model") for g in members})
        figure, axes = plt.subplots(1, len(models), figsize=(width * len(models), 4), squeeze=False, sharey=True)
        panels = [(axis, model, sorted((g for g in members if g.flags.get("model") == model),
                                       key=lambda g: mask_label(g.flags))) for axis, model in zip(axes[0], models)]
        yield dataset, buffer_size, figure, members, panels


PERCENT = (0, 100)


def band(axis, x, values, group, limits=PERCENT, **style):
    """The mean over runs (rows of `values`) as a line labelled with the group's mask, ± the sample std, the band
    clipped to the values the quantity can take (`limits`: 0–100 % for an accuracy; None for an open side)."""
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
    axis.plot(x, mean, label=f"{mask_label(group.flags)} (n={group.n})", **style)
    axis.fill_between(x, np.clip(mean - std, *limits), np.clip(mean + std, *limits), alpha=0.2)


def mark_switches(axis, curve):
    """A dotted line at each task switch of an evaluation curve, labelled with the task that begins there."""
    for before, after in zip(curve, curve[1:]):
        if after["task"] != before["task"]:
            axis.axvline(before["step"], color="grey", linestyle=":", linewidth=1)
            axis.text(before["step"], 0.98, f" task {after['task'] + 1}", transform=axis.get_xaxis_transform(),
                      fontsize=6, color="grey", va="top", ha="left")


def task_curves(groups, directory, series, ylabel, prefix, limits=PERCENT):
    """One figure per (dataset, buffer size): a panel per model, a line per mask, mean ± std band of a
    per-task series of each run."""
    paths = []
    for dataset, buffer_size, figure, members, panels in model_panels(groups, 4.5):
        for axis, model, lines in panels:
            for group in lines:
                curves = group.curves(series)
                tasks = np.arange(1, curves.shape[1] + 1)
                band(axis, tasks, curves, group, limits, marker="o")
            axis.set_title(model)
            axis.set_xlabel("task")
            axis.set_xticks(tasks)
            axis.legend(fontsize=7)
        panels[0][0].set_ylabel(ylabel)
        runs = sum(g.n for g in members)
        figure.suptitle(f"{dataset}, buffer {buffer_size}: mean ± std over seeds ({runs} runs)")
        paths.append(save(figure, directory, f"{prefix}-{dataset}-buffer{buffer_size}"))
    return paths


def mask_value_curves(groups, directory):
    """Final Class-IL and forgetting against m, a line per model (and mask), where m varies."""
    paths = []
    valued = [g for g in groups if isinstance(g.flags.get("mask_value"), (int, float))]
    settings = sorted({(g.flags.get("dataset"), g.flags.get("buffer_size")) for g in valued}, key=str)
    for dataset, buffer_size in settings:
        members = [g for g in valued if (g.flags.get("dataset"), g.flags.get("buffer_size")) == (dataset, buffer_size)]
        lines = {}
        for group in members:
            lines.setdefault((group.flags.get("model"), group.flags.get("mask")), []).append(group)
        lines = {k: sorted(v, key=lambda g: g.flags["mask_value"]) for k, v in lines.items() if len(v) > 1}
        if not lines:
            continue
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        for axis, (setting, metric, label) in zip(axes, (("class_il", "final_avg", "final Class-IL (%)"),
                                                         ("class_il", "forgetting", "Class-IL forgetting (%)"))):
            for (model, mask), line in sorted(lines.items()):
                values = [g.flags["mask_value"] for g in line]
                stats = [g.mean_std(f"{setting}_{metric}") for g in line]
                axis.errorbar(values, [m for m, _ in stats], yerr=[s or 0 for _, s in stats], marker="o",
                              capsize=3, label=f"{model}, {mask}")
            axis.set_xlabel("mask value m")
            axis.set_ylabel(label)
            axis.legend(fontsize=7)
        runs = sum(g.n for line in lines.values() for g in line)
        figure.suptitle(f"{dataset}, buffer {buffer_size}: mean ± std against m ({runs} runs)")
        paths.append(save(figure, directory, f"mask-value-{dataset}-buffer{buffer_size}"))
    return paths


def first_task_curves(groups, directory):
    """With --eval_every: task 1's Class-IL accuracy through the stream, a panel per model, a line per mask
    (mean ± std band over seeds, within 0–100 %), labelled dotted lines at the task switches; one figure per
    (dataset, buffer)."""
    paths = []
    curved = [g for g in groups if all(r.get("eval_curve") for r in g.records)]
    for dataset, buffer_size, figure, _, panels in model_panels(curved, 5):
        for axis, model, lines in panels:
            for group in lines:
                curve = group.records[0]["eval_curve"]
                steps = np.array([p["step"] for p in curve])
                band(axis, steps, group.curves(lambda r: [p["class_il"][0] for p in r["eval_curve"]]), group)
            mark_switches(axis, curve)
            axis.set_title(model)
            axis.set_xlabel("training step")
            axis.legend(fontsize=7)
        panels[0][0].set_ylabel("task 1 Class-IL accuracy (%)")
        figure.suptitle(f"{dataset}, buffer {buffer_size}: task 1 through the stream, mean ± std over seeds")
        paths.append(save(figure, directory, f"stream-task1-{dataset}-buffer{buffer_size}"))
    return paths


def write_plots(groups, directory):
    os.makedirs(directory, exist_ok=True)
    paths = [heatmap(group, directory, i) for i, group in enumerate(groups)]
    paths += [confusion_heatmap(group, directory, i) for i, group in enumerate(groups)]
    paths += task_curves(groups, directory, seen_task_accuracy, "Class-IL accuracy on tasks seen (%)", "seen-tasks")
    with_diagnostics = [g for g in groups if all(r.get("diagnostics") for r in g.records)]
    if with_diagnostics:
        paths += task_curves(with_diagnostics, directory, old_gradient_series,
                             "stream CE old-class gradient mass Σ|∂L/∂z_old|", "old-grad", limits=(0, None))
    paths += first_task_curves(groups, directory)
    return [p for p in paths + mask_value_curves(groups, directory) if p is not None]
