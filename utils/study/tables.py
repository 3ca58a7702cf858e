"""Groups -> tables: one row per group (markdown, LaTeX, CSV) or the papers' pivot (rows model × mask,
columns buffer size × setting). Cells are mean ± sample std (n−1)."""
import csv
import io

from tabulate import tabulate

from utils.study.groups import METRICS, baseline_of, welch

LABELS = {"class_il_final_avg": "Class-IL", "task_il_final_avg": "Task-IL", "class_il_forgetting": "forgetting",
          "class_il_bwt": "BWT", "class_il_fwt": "FWT", "recency_bias": "recency bias",
          "grad_old": "old-class grad"}
SIGNIFICANT = 0.05
LATEX_PM = "$\\pm$"


DIGITS = {"grad_old": ".4f"}  # gradient masses are small: the batch mean carries a 1/B


def cell(mean, std, latex=False, digits=".2f"):
    if mean is None:
        return "n/a"
    if std is None:
        return f"{mean:{digits}}"
    plus_minus = LATEX_PM if latex else "±"
    return f"{mean:{digits}} {plus_minus} {std:{digits}}"


def varying_flags(groups):
    """Flags whose value differs between groups of the same model (so a model's own flags, such as
    DER's alpha, are not listed just because other models lack them), model first."""
    first = ("model", "dataset", "mask", "mask_value", "buffer_size")
    names = {name for g in groups for name in g.flags}
    by_model = {}
    for group in groups:
        by_model.setdefault(group.flags.get("model"), []).append(group)
    varying = {n for n in names for members in by_model.values()
               if len({repr(g.flags.get(n)) for g in members}) > 1}
    if len(by_model) > 1:
        varying.add("model")
    return [n for n in first if n in varying] + sorted(n for n in varying if n not in first)


def mask_label(flags):
    value = flags.get("mask_value")
    return flags.get("mask", "?") if value is None else f"{flags.get('mask')} (m={value})"


def group_rows(groups, baseline=(), latex=False):
    """(headers, rows) of the one-row-per-group table, with the baseline comparison when asked."""
    flags = varying_flags(groups) or ["model"]
    headers = flags + ["n"] + [LABELS[name] for name, _ in METRICS]
    if baseline:
        headers += [f"Δ Class-IL vs {' '.join(baseline)}", "p (Welch)"]
    rows = []
    for group in sorted(groups, key=lambda g: [str(g.flags.get(f)) for f in flags]):
        row = [group.flags.get(f) for f in flags] + [group.n]
        row += [cell(*group.mean_std(name), latex=latex, digits=DIGITS.get(name, ".2f")) for name, _ in METRICS]
        if baseline:
            row += comparison(group, groups, baseline)
        rows.append(row)
    return headers, rows


def comparison(group, groups, baseline):
    reference = baseline_of(group, groups, baseline)
    if reference is None:
        return ["baseline" if all(f"{k}={group.flags.get(k)}" in baseline for k in
                                  (c.partition("=")[0] for c in baseline)) else "no baseline", ""]
    difference, p = welch(group.values("class_il_final_avg"), reference.values("class_il_final_avg"))
    mark = "*" if p is not None and p < SIGNIFICANT else ""
    return [f"{difference:+.2f}{mark}", "n/a" if p is None else f"{p:.3g}"]


def csv_table(groups):
    """One row per group: a column per flag of the key, then n and <metric>_mean, <metric>_std."""
    flags = sorted({name for g in groups for name in g.flags})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(flags + ["n"] + [f"{name}_{s}" for name, _ in METRICS for s in ("mean", "std")])
    for group in groups:
        stats = [v for name, _ in METRICS for v in group.mean_std(name)]
        writer.writerow([group.flags.get(f) for f in flags] + [group.n] + ["" if v is None else v for v in stats])
    return out.getvalue()


def pivot_rows(groups, latex=False):
    """Rows model × mask (and any other varying flag), columns buffer size × Class-IL / Task-IL."""
    others = [f for f in varying_flags(groups) if f not in ("model", "mask", "mask_value", "buffer_size")]
    buffers = sorted({g.flags.get("buffer_size") for g in groups}, key=lambda b: (b is None, b))
    settings = (("class_il_final_avg", "Class-IL"), ("task_il_final_avg", "Task-IL"))
    headers = ["model", "mask"] + others + [f"{label} (buffer {b})" for b in buffers for _, label in settings]
    table = {}
    for group in groups:
        row = (group.flags.get("model"), mask_label(group.flags)) + tuple(str(group.flags.get(f)) for f in others)
        for setting, _ in settings:
            mean, std = group.mean_std(setting)
            table.setdefault(row, {})[(group.flags.get("buffer_size"), setting)] = (
                cell(mean, std, latex) + f" (n={group.n})")
    rows = [list(row) + [cells.get((b, s), "") for b in buffers for s, _ in settings]
            for row, cells in sorted(table.items())]
    return headers, rows


def render(headers, rows, fmt):
    if fmt == "latex":
        return tabulate(rows, headers=headers, tablefmt="latex_raw")
    return tabulate(rows, headers=headers, tablefmt="github")
