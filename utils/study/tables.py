"""Groups -> tables: one row per group (markdown, LaTeX, CSV), the papers' pivot (rows model × mask,
columns buffer size × setting), or cures × the values of one flag (each cell against its baseline).
Cells are mean ± sample std (n−1); a comparison with a baseline gives the difference of means with its 95 %
confidence interval, Hedges' g, Welch's p and that p corrected for the number of tests in the table."""
import csv
import io
import re
from typing import NamedTuple

from tabulate import tabulate

from utils.study.groups import METRICS, OPTIONAL, baseline_of, is_baseline, matches_any
from utils.study.health import FLOOR_MODEL, health
from utils.study.statistics import (
    CORRECTION_NAMES,
    CORRECTIONS,
    LEVEL,
    difference_interval,
    hedges_g,
    mean_interval,
    welch,
)

LABELS = {"class_il_final_avg": "Class-IL", "task_il_final_avg": "Task-IL", "class_il_forgetting": "forgetting",
          "class_il_bwt": "BWT", "class_il_fwt": "FWT", "recency_bias": "recency bias",
          "grad_old": "old-class grad", "online_acc": "online acc", "anytime_acc": "anytime acc",
          "a_auc": "A_AUC",
          "min_acc": "min-ACC", "wc_acc": "WC-ACC", "stability_gap": "stability gap",
          "gap_recovered": "gap recovered %"}
SIGNIFICANT = 0.05
UNHEALTHY = "†"  # a baseline not above the fine-tuning floor beyond noise
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


class Comparison(NamedTuple):
    """A group against its baseline: the difference of means (or "baseline", "no baseline", "n/a" where a run
    lacks the metric), Welch's p, p corrected over the table's tests, the difference's 95 % interval, Hedges' g."""
    difference: object
    p: float = None
    adjusted: float = None
    interval: tuple = None
    g: float = None
    health: object = None  # a baseline group's Health (utils/study/health.py) against the fine-tuning floor

    @property
    def unhealthy(self):
        return self.health is not None and self.health.healthy is False

    @property
    def significant(self):
        return self.adjusted is not None and self.adjusted < SIGNIFICANT


def comparisons(groups, baseline, compared="class_il_final_avg", correction="holm", every_group=()):
    """{id(group): Comparison} of every group against its baseline on `compared`, the p-values corrected over
    the table's tests (every group with a p); each baseline group's health against the fine-tuning floor found
    among `every_group` (all the runs read, before --where)."""
    found = {}
    for group in groups:
        reference = baseline_of(group, groups, baseline)
        mine = group.values(compared)
        theirs = None if reference is None else reference.values(compared)
        if reference is None and is_baseline(group, baseline):
            found[id(group)] = Comparison("baseline", health=health(group, every_group))
        elif reference is None:
            found[id(group)] = Comparison("no baseline")
        elif mine is None or theirs is None:
            found[id(group)] = Comparison("n/a")
        else:
            found[id(group)] = Comparison(*welch(mine, theirs), None, difference_interval(mine, theirs),
                                          hedges_g(mine, theirs))
    keys = list(found)
    adjusted = CORRECTIONS[correction]([found[key].p for key in keys])
    return {key: found[key]._replace(adjusted=value) for key, value in zip(keys, adjusted)}


def tests_note(found, correction, columns=False, reference="the baseline"):
    """The line under a table with comparisons: what Δ (with g and intervals, except in the --columns layout) and *
    are, and over how many tests p was corrected (the CSV's p_corrected and the --format csv layout have it too)."""
    tests = sum(c.p is not None for c in found.values())
    plural = "" if tests == 1 else "s"
    what = ("p not corrected" if correction == "none"
            else f"p corrected by {CORRECTION_NAMES[correction]} over {tests} test{plural}")
    delta = (f"Δ: difference of means from {reference}" if columns else
             f"Δ: difference of means from {reference} with its {LEVEL:.0%} confidence interval (Welch); g: Hedges' g")
    return f"{delta}; * p < {SIGNIFICANT} after correction ({what})"


def health_note(groups, found):
    """Lines under a table with a baseline: each baseline not above the fine-tuning floor of its dataset and
    protocol beyond noise (†, with the floor, Δ and p), and the baselines that could not be checked."""
    lines, unchecked = [], []
    for group in groups:
        compared = found.get(id(group))
        if compared is None or compared.health is None or compared.health.text() == "the fine-tuning floor itself":
            continue
        if compared.unhealthy:
            lines.append(f"{UNHEALTHY} baseline {describe(group, groups)}: {compared.health.text()}; a gain over it "
                         f"is no finding about a working method")
        elif compared.health.healthy is None:
            unchecked.append(f"{describe(group, groups)} ({compared.health.text()})")
    if unchecked:
        lines.append(f"baselines not checked against fine-tuning: {'; '.join(unchecked)}")
    return lines


def interval_text(interval, digits=".2f"):
    return "n/a" if interval is None else f"[{interval[0]:{digits}}, {interval[1]:{digits}}]"


TRIALS = re.compile(r"^tuned: best of (\d+) trials")


def configs_note(groups):
    """The line under a table whose groups all took their configuration one way (tuned or published), or None."""
    labels = {config_label(g) for g in groups}
    return f"every group's configuration: {labels.pop()}" if len(labels) == 1 and "as given" not in labels else None


def config_label(group):
    """Where a group's hyperparameters came from: "tuned (N trials)" (a tuning's pick, from a grid of N trials per
    group), "published" (--config best), "as given" (the flags), or "mixed" where its runs differ."""
    labels = set()
    for record in group.records:
        source = record.get("config_source")
        found = TRIALS.match(source or "")
        labels.add(f"tuned ({found.group(1)} trials)" if found else "published" if source else "as given")
    return labels.pop() if len(labels) == 1 else "mixed"


def published_cell(group, entries):
    """The paper's Class-IL of a group run with --config best whose dataset (or the dataset it stands in for), model
    and buffer match a published entry: "mean ± std (source)", or "" where none does."""
    from utils.reference.figures import SOURCE_LABELS, figure

    if group.flags.get("config") != "best":
        return ""
    dataset = standing_for(group.flags.get("dataset"))
    for entry in entries:
        if (entry["dataset"], entry["model"], entry["buffer_size"] or 0) == (
                dataset, group.flags.get("model"), group.flags.get("buffer_size") or 0) and "class_il" in entry:
            stand_in = "" if dataset == group.flags.get("dataset") else f", on {dataset}"
            return f"{figure(entry, 'class_il')} ({SOURCE_LABELS.get(entry['source'], entry['source'])}{stand_in})"
    return ""


def standing_for(dataset):
    from datasets import DATASETS

    return DATASETS.get(dataset).CONFIG_DATASET or dataset if dataset in DATASETS.names() else dataset


def group_rows(groups, baseline=(), latex=False, compared="class_il_final_avg", found=None, published=None):
    """(headers, rows) of the one-row-per-group table, with the baseline comparison of `compared` (`found`:
    comparisons()) when asked: the compared mean's 95 % interval, Δ, its interval, g, p and corrected p."""
    flags = shown_flags(groups)
    metrics = [name for name, _ in METRICS
               if name not in OPTIONAL or any(g.mean_std(name)[0] is not None for g in groups)]
    configs = any(r.get("config_source") for g in groups for r in g.records)
    headers = flags + ["n"] + (["config"] if configs else []) + [LABELS[name] for name in metrics]
    headers += ["paper Class-IL"] if published is not None else []
    if baseline:
        headers += [f"{LEVEL:.0%} CI", f"Δ {LABELS[compared]} vs {' '.join(baseline)}", f"{LEVEL:.0%} CI of Δ", "g",
                    "p (Welch)", "p (corrected)"]
    rows = []
    for group in sorted(groups, key=lambda g: [str(g.flags.get(f)) for f in flags]):
        row = [group.flags.get(f) for f in flags] + [group.n] + ([config_label(group)] if configs else [])
        row += [cell(*group.mean_std(name), latex=latex, digits=DIGITS.get(name, ".2f")) for name in metrics]
        row += [published_cell(group, published)] if published is not None else []
        if baseline:
            values = group.values(compared)
            row += [interval_text(None if values is None else mean_interval(values))]
            row += comparison_cells(found[id(group)])
        rows.append(row)
    return headers, rows


def comparison_cells(comparison):
    if isinstance(comparison.difference, str):
        return [comparison.difference + (f" {UNHEALTHY}" if comparison.unhealthy else ""), "", "", "", ""]
    return [f"{comparison.difference:+.2f}{'*' if comparison.significant else ''}",
            interval_text(comparison.interval), "n/a" if comparison.g is None else f"{comparison.g:.2f}",
            "n/a" if comparison.p is None else f"{comparison.p:.3g}",
            "n/a" if comparison.adjusted is None else f"{comparison.adjusted:.3g}"]


def delta_column(compared):
    return "class_il_delta" if compared == "class_il_final_avg" else f"{compared}_delta"


def csv_table(groups, baseline=(), compared="class_il_final_avg", found=None, published=None):
    """One row per group: a column per flag of the key, then n and <metric>_mean, <metric>_std, <metric>_ci_low,
    <metric>_ci_high (95 %), and with a baseline the difference of `compared` (class_il_delta by default: a
    number, "baseline" or "no baseline"), its interval, Hedges' g, p_welch, p_corrected and, for a baseline
    group, its health against the fine-tuning floor (utils/study/health.py)."""
    flags = sorted({name for g in groups for name in g.flags})
    out = io.StringIO()
    writer = csv.writer(out)
    delta = delta_column(compared)
    extra = ([delta, f"{delta}_ci_low", f"{delta}_ci_high", "hedges_g", "p_welch", "p_corrected", "baseline_health"]
             if baseline else [])
    extra += ["paper_class_il"] if published is not None else []
    writer.writerow(flags + ["n"] + [f"{name}_{s}" for name, _ in METRICS for s in ("mean", "std", "ci_low", "ci_high")]
                    + extra)
    for group in groups:
        stats = []
        for name, _ in METRICS:
            values = group.values(name)
            interval = None if values is None else mean_interval(values)
            stats += [*group.mean_std(name), *(interval or (None, None))]
        if baseline:
            c = found[id(group)]
            stats += [c.difference, *(c.interval or (None, None)), c.g, c.p, c.adjusted,
                      None if c.health is None else c.health.text()]
        if published is not None:
            stats.append(published_cell(group, published) or None)
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


def column_rows(groups, columns, baseline, compared="class_il_final_avg", latex=False, found=None):
    """Rows: what each group changes from its baseline (the baseline first); columns: the values of the
    flags `columns` (e.g. model, or model and buffer_size); cells: mean ± std of `compared`, then the
    difference from the baseline of the same column with * where the corrected p < 0.05 and that p (`found`:
    comparisons()),
    and n where it is not the table's largest. Raises CellTaken when two groups would share a cell (another flag
    varies: filter it)."""
    def column_of(group):
        return tuple(group.flags.get(name) for name in columns)
    values = sorted({column_of(g) for g in groups}, key=lambda v: [natural(x) for x in v])
    most = max(g.n for g in groups)
    table, floors = {}, {}
    labels_of_configs = {config_label(g) for g in groups}  # said once under the table where every group shares it
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
        compared_to = found[id(group)]
        if compared_to.unhealthy:
            text += f" {UNHEALTHY}"
        if compared_to.health is not None and compared_to.health.floor is not None:
            floors[value] = compared_to.health.floor
        if not isinstance(compared_to.difference, str):
            p = "" if compared_to.adjusted is None else f", p {compared_to.adjusted:.2g}"
            text += f" ({compared_to.difference:+{digits}}{'*' if compared_to.significant else ''}{p})"
        if group.n != most:
            text += f", n = {group.n}"
        if len(labels_of_configs) > 1 and config_label(group) != "as given":
            text += f", {config_label(group)}"
        cells[value] = (text, describe(group, groups))
    first = " ".join(baseline)
    labels = sorted(table, key=lambda label: (label != first, label))
    headers = [f"{LABELS[compared]} vs {first}"] + [title(columns, v) for v in values]
    rows = [[label] + [table[label].get(v, ("—",))[0] for v in values] for label in labels]
    if floors and compared == "class_il_final_avg":
        rows.insert(1, [f"{FLOOR_MODEL} (fine-tuning floor)"]
                    + [cell(*floors[v].mean_std(compared), latex, digits) + (f", n = {floors[v].n}"
                                                                           if floors[v].n != most else "")
                       if v in floors else "—" for v in values])
    return headers, rows


class Ambiguous(ValueError):
    """A group of one cure has more than one group of the other cure in its cell."""


def cure_flags():
    """The flags that make a cure: the mask, its scopes and value, the head, the calibration, and every registered
    mask's and calibration's own flags."""
    from utils.plumbing.cli import entry_options

    own = {option.lstrip("-") for registry, _, options in entry_options() if registry.kind in ("mask", "calibration")
           for option in options}
    return {"mask", "mask_value", "mask_scope", "mask_buffer", "buffer_scope", "head", "calibration"} | own


def versus_rows(groups, first, second, compared="class_il_final_avg", latex=False, correction="holm"):
    """(headers, rows, comparisons) of the head-to-head layout: each group of cure `first` (KEY=VALUE conditions)
    beside the group of cure `second` that has the same flags outside the cures' (model, dataset, buffer, lr,
    ...), then Δ, its 95 % interval, g, p and p corrected over the rows. Raises Ambiguous when a cell holds two
    groups of the second cure (they differ in a cure flag the command does not name)."""
    free = cure_flags()

    def holds(group, conditions):
        return all(matches_any(group.flags.get(k), v) for k, _, v in (c.partition("=") for c in conditions))

    def outside(group):
        return {name: value for name, value in group.flags.items() if name not in free and value is not None}
    rows, found = [], {}
    for group in sorted((g for g in groups if holds(g, first) and not holds(g, second)),
                        key=lambda g: describe(g, groups)):
        others = [g for g in groups if g is not group and holds(g, second) and outside(g) == outside(group)]
        if len(others) > 1:
            raise Ambiguous(f"{describe(group, groups)} has {len(others)} groups of {' '.join(second)} beside it: "
                            + "; ".join(describe(g, groups) for g in others))
        if not others:
            continue
        mine, theirs = group.values(compared), others[0].values(compared)
        found[id(group)] = (Comparison("n/a") if mine is None or theirs is None else
                            Comparison(*welch(mine, theirs), None, difference_interval(mine, theirs),
                                       hedges_g(mine, theirs)))
        rows.append((group, others[0]))
    keys = list(found)
    adjusted = CORRECTIONS[correction]([found[key].p for key in keys])
    found = {key: found[key]._replace(adjusted=value) for key, value in zip(keys, adjusted)}
    shown = [name for name in shown_flags(groups) if name not in free]
    digits = DIGITS.get(compared, ".2f")
    headers = shown + [f"{' '.join(first)}", f"{' '.join(second)}", f"Δ {LABELS[compared]}", f"{LEVEL:.0%} CI of Δ",
                       "g", "p (Welch)", "p (corrected)"]
    table = []
    for group, other in rows:
        table.append([group.flags.get(name) for name in shown]
                     + [cell(*g.mean_std(compared), latex, digits) + f" (n={g.n})" for g in (group, other)]
                     + comparison_cells(found[id(group)]))
    return headers, table, found


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
