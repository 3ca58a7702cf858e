"""Groups -> tables: one row per group (markdown, LaTeX, CSV), the papers' pivot (rows model × mask,
columns buffer size × setting), or cures × the values of one flag (each cell against its baseline).
Cells are mean ± sample std (n−1)."""
import csv
import io

from tabulate import tabulate

from utils.study.groups import METRICS, OPTIONAL, baseline_of, is_baseline, welch

LABELS = {"class_il_final_avg": "Class-IL", "task_il_final_avg": "Task-IL", "class_il_forgetting": "forgetting",
          "class_il_bwt": "BWT", "class_il_fwt": "FWT", "recency_bias": "recency bias",
          "grad_old": "old-class grad", "online_acc": "online acc", "anytime_acc": "anytime acc",
          "min_acc": "min-ACC", "wc_acc": "WC-ACC", "stability_gap": "stability gap"}
SIGNIFICANT = 0.05
LATEX_PM = "$\\pm$"


IDENTITY = ("model", "dataset", "mask", "mask_value", "buffer_size")
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
    DER's alpha, are not listed just because other models lack them)."""
    names = {name for g in groups for name in g.flags}
    by_model = {}
    for group in groups:
        by_model.setdefault(group.flags.get("model"), []).append(group)
    return {n for n in names for members in by_model.values() if len({repr(g.flags.get(n)) for g in members}) > 1}


def shown_flags(groups):
    """The columns that identify a row: model, dataset and mask always, m and buffer size wherever a run
    has them, then every other flag that varies (a flag merged by --ignore is in no group)."""
    present = {name for g in groups for name, value in g.flags.items() if value is not None}
    always = [name for name in IDENTITY if name in present]
    return always + sorted(varying_flags(groups) - set(always))


def mask_label(flags):
    value = flags.get("mask_value")
    return flags.get("mask", "?") if value is None else f"{flags.get('mask')} (m={value})"


def group_rows(groups, baseline=(), latex=False, compared="class_il_final_avg"):
    """(headers, rows) of the one-row-per-group table, with the baseline comparison of `compared` when asked."""
    flags = shown_flags(groups)
    metrics = [name for name, _ in METRICS
               if name not in OPTIONAL or any(g.mean_std(name)[0] is not None for g in groups)]
    headers = flags + ["n"] + [LABELS[name] for name in metrics]
    if baseline:
        headers += [f"Δ {LABELS[compared]} vs {' '.join(baseline)}", "p (Welch)"]
    rows = []
    for group in sorted(groups, key=lambda g: [str(g.flags.get(f)) for f in flags]):
        row = [group.flags.get(f) for f in flags] + [group.n]
        row += [cell(*group.mean_std(name), latex=latex, digits=DIGITS.get(name, ".2f")) for name in metrics]
        if baseline:
            row += comparison_cells(*comparison(group, groups, baseline, compared))
        rows.append(row)
    return headers, rows


def comparison(group, groups, baseline, compared="class_il_final_avg"):
    """(difference of the groups' means of `compared`, Welch p) against the group's baseline; a difference
    of "baseline" for a baseline group itself, "no baseline" where there is none, "n/a" where a run lacks
    the metric."""
    reference = baseline_of(group, groups, baseline)
    if reference is None:
        return ("baseline" if is_baseline(group, baseline) else "no baseline"), None
    mine, theirs = group.values(compared), reference.values(compared)
    return ("n/a", None) if mine is None or theirs is None else welch(mine, theirs)


def comparison_cells(difference, p):
    if isinstance(difference, str):
        return [difference, ""]
    mark = "*" if p is not None and p < SIGNIFICANT else ""
    return [f"{difference:+.2f}{mark}", "n/a" if p is None else f"{p:.3g}"]


def delta_column(compared):
    return "class_il_delta" if compared == "class_il_final_avg" else f"{compared}_delta"


def csv_table(groups, baseline=(), compared="class_il_final_avg"):
    """One row per group: a column per flag of the key, then n and <metric>_mean, <metric>_std, and with
    a baseline the difference of `compared` (class_il_delta by default: a number, "baseline" or "no
    baseline") and p_welch."""
    flags = sorted({name for g in groups for name in g.flags})
    out = io.StringIO()
    writer = csv.writer(out)
    extra = [delta_column(compared), "p_welch"] if baseline else []
    writer.writerow(flags + ["n"] + [f"{name}_{s}" for name, _ in METRICS for s in ("mean", "std")] + extra)
    for group in groups:
        stats = [v for name, _ in METRICS for v in group.mean_std(name)]
        stats += list(comparison(group, groups, baseline, compared)) if baseline else []
        writer.writerow([group.flags.get(f) for f in flags] + [group.n] + ["" if v is None else v for v in stats])
    return out.getvalue()


def pivot_rows(groups, latex=False):
    """Rows model × mask (with the dataset and any other varying flag), columns buffer size × Class-IL /
    Task-IL (one pair of columns when buffer sizes are merged by --ignore buffer_size)."""
    others = [f for f in shown_flags(groups) if f not in ("model", "mask", "mask_value", "buffer_size")]
    buffers = sorted({g.flags.get("buffer_size") for g in groups}, key=lambda b: (b is None, b))
    settings = (("class_il_final_avg", "Class-IL"), ("task_il_final_avg", "Task-IL"))

    def title(label, buffer_size):
        return label if buffer_size is None else f"{label} (buffer {buffer_size})"
    headers = ["model", "mask"] + others + [title(label, b) for b in buffers for _, label in settings]
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


class CellTaken(ValueError):
    """Two groups fall in one cell of the --columns table."""


def cure_label(group, groups, baseline):
    """What a group changes from its baseline group (the flags whose values differ, as KEY=VALUE), the
    baseline's own text for a baseline group, and every flag for a group without a baseline."""
    reference = baseline_of(group, groups, baseline)
    if reference is None:
        return " ".join(baseline) if is_baseline(group, baseline) else "no baseline: " + " ".join(
            f"{name}={group.flags[name]}" for name in shown_flags(groups) if group.flags.get(name) is not None)
    return " ".join(f"{name}={value}" for name, value in sorted(group.flags.items())
                    if value is not None and reference.flags.get(name) != value)


def column_rows(groups, columns, baseline, compared="class_il_final_avg", latex=False):
    """Rows: what each group changes from its baseline (the baseline first); columns: the values of the
    flags `columns` (e.g. model, or model and buffer_size); cells: mean ± std of `compared`, then the
    difference from the baseline of the same column with * where Welch p < 0.05, and n where it is not the
    table's largest. Raises CellTaken when two groups would share a cell (another flag varies: filter it)."""
    def column_of(group):
        return tuple(group.flags.get(name) for name in columns)
    values = sorted({column_of(g) for g in groups}, key=lambda v: [natural(x) for x in v])
    most = max(g.n for g in groups)
    table = {}
    for group in groups:
        label = cure_label(group, groups, baseline)
        cells = table.setdefault(label, {})
        value = column_of(group)
        if value in cells:
            raise CellTaken(f"two groups have {label!r} at {title(columns, value)}: {cells[value][1]} and "
                            f"{describe(group, groups)}")
        mean, std = group.mean_std(compared)
        digits = DIGITS.get(compared, ".2f")
        text = cell(mean, std, latex, digits)
        difference, p = comparison(group, groups, baseline, compared)
        if not isinstance(difference, str):
            text += f" ({difference:+{digits}}{'*' if p is not None and p < SIGNIFICANT else ''})"
        if group.n != most:
            text += f", n = {group.n}"
        cells[value] = (text, describe(group, groups))
    first = " ".join(baseline)
    labels = sorted(table, key=lambda label: (label != first, label))
    headers = [f"{LABELS[compared]} vs {first}"] + [title(columns, v) for v in values]
    return headers, [[label] + [table[label].get(v, ("—",))[0] for v in values] for label in labels]


def natural(value):
    """Sort key: numbers by value (buffer 50 before 200), then text, then unset."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value is None, not number, value if number else str(value)


def title(columns, value):
    return " ".join(f"{name}={v}" for name, v in zip(columns, value))


def describe(group, groups):
    return " ".join(f"{name}={group.flags[name]}" for name in shown_flags(groups) if group.flags.get(name) is not None)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "Δ": r"$\Delta$", "±": LATEX_PM, "−": "-", "×": r"$\times$"}


def latex_escape(value):
    """Text as LaTeX typesets it, the ± that cell() wrote as $\\pm$ kept."""
    return LATEX_PM.join("".join(LATEX_SPECIAL.get(c, c) for c in part) for part in str(value).split(LATEX_PM))


def render(headers, rows, fmt):
    """The table as text; cells are printed as written (no reformatting of numbers)."""
    if fmt == "latex":
        headers = [latex_escape(h) for h in headers]
        rows = [["" if v is None else latex_escape(v) for v in row] for row in rows]
        return tabulate(rows, headers=headers, tablefmt="latex_raw", disable_numparse=True)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
