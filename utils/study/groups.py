"""Results lines -> groups of runs that differ only in seed: mean, sample std (n−1) and n of each figure, and
the baseline group of each (the tests between them: utils/study/statistics.py)."""
import json
import math

import numpy as np

from utils.core.metrics import nan_array
from utils.plumbing.identity import flags_key


def final_recency_bias(record):
    return (record.get("recency_bias") or [None])[-1]


def old_gradient_mass(record):
    """Mean over tasks t ≥ 2 of the stream CE's per-task mean old-class gradient mass (grad/old)."""
    per_task = [d.get("grad/old") for d in (record.get("diagnostics") or [])[1:]]
    return None if not per_task or None in per_task else float(np.mean(per_task))


def stability_metric(field, part=None):
    """A --eval_every figure of the results line (None for runs without it, or written before the figure was)."""
    def getter(record):
        value = record.get(field)
        return value if part is None or value is None else value.get(part)
    return getter


def summary_metric(setting, metric):
    return lambda record: record[setting][metric]


# (column name, getter): the figures a report gives for each group
METRICS = (("class_il_final_avg", summary_metric("class_il", "final_avg")),
           ("task_il_final_avg", summary_metric("task_il", "final_avg")),
           ("class_il_forgetting", summary_metric("class_il", "forgetting")),
           ("class_il_bwt", summary_metric("class_il", "bwt")),
           ("class_il_fwt", summary_metric("class_il", "fwt")),
           ("recency_bias", final_recency_bias),
           ("grad_old", old_gradient_mass),
           ("online_acc", stability_metric("online_accuracy", "mean")),
           ("anytime_acc", stability_metric("anytime_accuracy")),
           ("a_auc", stability_metric("a_auc")),
           ("min_acc", stability_metric("min_acc", "mean")),
           ("wc_acc", stability_metric("wc_acc")),
           ("stability_gap", stability_metric("stability_gap", "mean")),
           ("gap_recovered", stability_metric("stability_gap", "recovered_share")))
OPTIONAL = {"online_acc", "anytime_acc", "a_auc", "min_acc", "wc_acc", "stability_gap",
            "gap_recovered"}  # where a run has them
METRIC = dict(METRICS)


def group_key(record, ignored=()):
    """The run's key (utils.plumbing.identity.flags_key) without seed and the `ignored` flags."""
    key = {name: value for name, value in flags_key(record["args"]).items() if name != "seed" and name not in ignored}
    return tuple((name, json.dumps(value, sort_keys=True)) for name, value in key.items())


def value_matches(value, wanted):
    """A flag's value against KEY=VALUE text: numbers compare as numbers, anything else as text."""
    try:
        return math.isclose(float(value), float(wanted))
    except (TypeError, ValueError):
        return str(value) == wanted or json.dumps(value) == wanted


def matches_any(value, wanted):
    """KEY=V1,V2 text holds for any of its comma-separated values."""
    return any(value_matches(value, one) for one in wanted.split(","))


def matches(record, where):
    """--where KEY=VALUE filters, all of which must hold; KEY=V1,V2 holds for any of the values."""
    return all(matches_any(record["args"].get(name), wanted)
               for name, _, wanted in (condition.partition("=") for condition in where))


def is_baseline(group, baseline):
    """The group holds every KEY=VALUE (or KEY=V1,V2) of the baseline."""
    return all(matches_any(group.flags.get(k), v) for k, _, v in (c.partition("=") for c in baseline))


class Group:
    """Runs with one key; `flags` is the key as a dict of plain values."""

    def __init__(self, key, records):
        self.key, self.records = key, sorted(records, key=lambda r: r["args"]["seed"])
        self.flags = {name: json.loads(value) for name, value in key}

    @property
    def n(self):
        return len(self.records)

    def values(self, name):
        values = [METRIC[name](r) for r in self.records]
        return None if any(v is None for v in values) else np.array(values, dtype=float)

    def mean_std(self, name):
        """(mean, sample std with n−1 or None for one run), or (None, None) when a run lacks the metric."""
        values = self.values(name)
        if values is None:
            return None, None
        return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else None)

    def mean_matrix(self, setting):
        """Element-wise mean of the accuracy matrices (None where a run did not evaluate)."""
        return nan_array([r[setting]["matrix"] for r in self.records]).mean(axis=0)

    def curves(self, series):
        """[runs, tasks] of a per-task series of each run (NaN where a run has no value)."""
        return nan_array([series(r) for r in self.records])

    def mean_confusion(self):
        """Element-wise mean of the runs' final task-confusion matrices, or None if a run has none."""
        matrices = [r.get("task_confusion") for r in self.records]
        if any(m is None for m in matrices):
            return None
        return nan_array(matrices).mean(0)


def seen_task_accuracy(record):
    """Mean Class-IL accuracy on the tasks seen so far, after each task."""
    return [float(np.mean(row[:t + 1])) for t, row in enumerate(record["class_il"]["matrix"])]


def old_gradient_series(record):
    """The stream CE's mean old-class gradient mass during each task (None for the first)."""
    return [None] + [d.get("grad/old") for d in (record.get("diagnostics") or [])[1:]]


def build_groups(records, ignored=(), where=()):
    grouped = {}
    for record in records:
        if matches(record, where):
            grouped.setdefault(group_key(record, ignored), []).append(record)
    return [Group(key, members) for key, members in grouped.items()]


def baseline_of(group, groups, baseline):
    """The group equal to `group` except for the baseline's flags (KEY=VALUE, or KEY=V1,V2 for any of the
    values, such as each model's own head) and flags the baseline leaves unset (e.g. mask_value, which
    `none` does not have); None if there is none."""
    wanted = dict(condition.partition("=")[::2] for condition in baseline)
    for candidate in groups:
        if candidate is group or not all(matches_any(candidate.flags.get(k), v) for k, v in wanted.items()):
            continue
        if all(candidate.flags.get(name) in (None, value) for name, value in group.flags.items() if name not in wanted):
            return candidate
    return None
