"""Tuning on a validation split (python -m utils.tune): a tune grid's runs fall into groups (every flag but the
tuned ones and the seed: model, mask, buffer, dataset, ...) and, within a group, trials (each combination of the
tuned flags: lr, α, m, ...). Every group must get the same number of trials, so that a cure is tuned exactly as hard
as its baseline. Selection runs every trial on the validation split over the selection seeds and picks, per group,
the trial with the highest mean of the selection metric (ties: the first in the grid's order); the picked file says
what was picked, from how many trials, with every trial's mean, and is what the final runs and `--config` read."""
import json

from utils.reference.configs import same_value
from utils.study.grid import GridError, expand, read_yaml

SELECTABLE = ("class_il_final_avg", "task_il_final_avg", "anytime_acc", "min_acc", "wc_acc")  # higher is better
TUNE_KEYS = ("tune", "validation", "selection_seeds", "final_seeds", "select")


def load_tune_file(path):
    """(name, blocks, common flags as a dict, the tune section) of a tune grid: a grid file (utils/study/grid.py)
    with a `tune:` section: `flags` (the tuned flags), and optionally `validation` (the held-out fraction),
    `selection_seeds`, `final_seeds` and `select` (the metric)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("tune"), dict) or not isinstance(data.get("blocks"), list):
        raise GridError(f"{path}: a tune grid is a mapping with tune: (flags: [the tuned flags], validation:, "
                        f"selection_seeds:, final_seeds:, select:) and blocks: (a list of blocks of flags)")
    tune = dict(data["tune"])
    unknown = sorted(set(tune) - {"flags", "validation", "selection_seeds", "final_seeds", "select"})
    if unknown:
        raise GridError(f"{path}: tune: has no {unknown[0]!r} (it takes flags, validation, selection_seeds, "
                        f"final_seeds, select)")
    if not tune.get("flags"):
        raise GridError(f"{path}: tune: flags: names no flag to tune (e.g. [lr, alpha])")
    blocks = data["blocks"]
    for number, block in enumerate(blocks, 1):
        if not isinstance(block, dict) or "seed" in block:
            raise GridError(f"{path}: block {number}: a block of flags without seed (the seeds are tune:'s "
                            f"selection_seeds and final_seeds)")
    common = data.get("common") or {}
    if "seed" in common:
        raise GridError(f"{path}: common: sets seed; the seeds are tune:'s selection_seeds and final_seeds")
    return str(data.get("name", "tune")), blocks, common, tune


def trials_by_group(blocks, common, tuned):
    """{group (a tuple of (flag, value) of the untuned flags): [trial (a dict of the tuned flags' values)]} in the
    grid's order; every group must hold the same number of trials."""
    import itertools

    groups = {}
    for block in blocks:
        merged = {**common, **block}
        names = list(merged)
        for combination in itertools.product(*(expand(merged[name]) for name in names)):
            flags = dict(zip(names, combination))
            group = tuple((name, value) for name, value in flags.items() if name not in tuned)
            groups.setdefault(group, []).append({name: flags[name] for name in names if name in tuned})
    sizes = {len(trials) for trials in groups.values()}
    if len(sizes) > 1:
        counts = sorted(((len(t), describe(g)) for g, t in groups.items()), key=lambda pair: pair[0])
        raise GridError(f"the groups get different numbers of trials ({counts[0][1]}: {counts[0][0]}; "
                        f"{counts[-1][1]}: {counts[-1][0]}): give every model and cure the same budget")
    return groups


def describe(group):
    return " ".join(f"{name}={value}" for name, value in group)


def seeds(value, what):
    found = expand(value)
    if not found or not all(isinstance(seed, int) for seed in found):
        raise GridError(f"tune: {what}: {value!r} is not a list or range of seeds (e.g. 0-2)")
    return found


def holds(record, flags):
    return all(same_value(record["args"].get(name), value) for name, value in flags.items())


def pick(groups, records, metric, selection_seeds):
    """[entry] per group: the trial with the highest mean of `metric` over the selection seeds (ties: the first in
    the grid's order), with every trial's mean and n; a trial missing a seed's run is named, never guessed."""
    from utils.study.groups import METRIC

    entries = []
    for group, trials in groups.items():
        scores = []
        for trial in trials:
            wanted = {**dict(group), **trial}
            values = {record["args"]["seed"]: METRIC[metric](record) for record in records if holds(record, wanted)}
            missing = [seed for seed in selection_seeds if seed not in values]
            if missing:
                raise GridError(f"no selection run of {describe(tuple(wanted.items()))} with seed {missing[0]} in "
                                f"the results: run the selection stage first (it resumes)")
            picked_values = [values[seed] for seed in selection_seeds]
            if any(value is None for value in picked_values):
                raise GridError(f"the selection runs of {describe(tuple(wanted.items()))} have no {metric}")
            scores.append({"flags": trial, "mean": sum(picked_values) / len(picked_values), "n": len(picked_values)})
        best = max(range(len(scores)), key=lambda index: (scores[index]["mean"], -index))
        entries.append({"group": dict(group), "picked": scores[best]["flags"], "mean": scores[best]["mean"],
                        "trials": len(trials), "scores": scores})
    return entries


def picked_file(entries, about):
    return json.dumps({"about": about, "entries": entries}, indent=1, sort_keys=False) + "\n"
