"""python -m utils.study.side_by_side: the suite's runs against a Mammoth code base's runs (Mammoth or a fork
of it) of the same models and protocol, per task, and the effect of one model against another in each.

Mammoth writes one Python-literal dict per run to <its results folder>/{class-il,task-il}/<dataset>/<model>/
logs.pyd* with `accmean_task{t}`, the mean accuracy over the tasks seen after task t; the suite's lines give
the same from their accuracy matrices. Each cell is mean ± sample std over seeds with Welch's p; an effect
(`--effect A:B`, A's final accuracy minus B's) is given in each code base with the p that the two effects
are equal (Welch-Satterthwaite over the four samples).
"""
import argparse
import ast
import glob
import os
import re
import sys

import numpy as np
from scipy import stats
from tabulate import tabulate

from utils.plumbing.results_file import read_lines
from utils.study.runs import unique_runs, where
from utils.study.statistics import welch
from utils.study.tables import cell

SETTINGS = {"class-il": "class_il", "task-il": "task_il"}


class SideBySideError(ValueError):
    """Runs that cannot be told apart by model and seed."""


def literal(line):
    """A line of Mammoth's logs as a Python literal: numpy scalars `np.float64(1.5)` as their value, any other
    call (`device(type='cpu')`, written by a run on the CPU) as its text."""
    line = re.sub(r"np\.\w+\(([^()]*)\)", r"\1", line)
    return re.sub(r"\b[A-Za-z_][\w.]*\([^()]*\)", lambda call: repr(call.group(0)), line)


def read_mammoth(root, dataset, model):
    """{setting: {seed: [mean accuracy over the seen tasks after each task]}} from Mammoth's logs."""
    runs = {}
    for setting in SETTINGS:
        for path in sorted(glob.glob(os.path.join(root, setting, dataset, model, "logs.pyd*"))):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    run = ast.literal_eval(literal(line))
                    means = [run[f"accmean_task{t}"] for t in range(1, 1 + sum(k.startswith("accmean_task")
                                                                               for k in run))]
                    if run["seed"] in runs.setdefault(setting, {}):
                        raise SideBySideError(f"{path}: two runs of {model} with seed {run['seed']}; keep one "
                                              f"protocol per folder")
                    runs[setting][run["seed"]] = means
    return runs


def read_suite(lines, dataset, model):
    """The same from the suite's results lines of `model` on `dataset` (each run key once)."""
    runs, keys = {}, {}
    for line in unique_runs(lines)[0]:
        record = line.record
        if record["model"] != model or record["dataset"] != dataset:
            continue
        if keys.setdefault(record["seed"], line) is not line:
            raise SideBySideError(f"two different runs of {model} with seed {record['seed']}: "
                                  f"{where(keys[record['seed']])} and {where(line)}; keep one protocol per file")
        for setting, field in SETTINGS.items():
            matrix = record[field]["matrix"]
            runs.setdefault(setting, {})[record["seed"]] = [float(np.mean(row[:t + 1])) for t, row in enumerate(matrix)]
    return runs


def p_text(p):
    return "n/a" if p is None else f"{p:.2f}" if p >= 0.01 else f"{p:.0e}"


def mean_std(values):
    return cell(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None)


def per_task_rows(model, theirs, ours):
    rows = []
    for task in range(len(next(iter(ours["class-il"].values())))):
        row = [model, task + 1]
        for setting in SETTINGS:
            a = [means[task] for means in theirs[setting].values()]
            b = [means[task] for means in ours[setting].values()]
            row += [mean_std(a), mean_std(b), p_text(welch(a, b)[1])]
        rows.append(row)
    return rows


def effect_test(a, b, c, d):
    """p that mean(a) − mean(b) = mean(c) − mean(d), Welch–Satterthwaite over the four samples."""
    variances = [np.var(x, ddof=1) / len(x) for x in (a, b, c, d)]
    se = np.sqrt(sum(variances))
    if se == 0:
        return None
    df = sum(variances) ** 2 / sum(v ** 2 / (len(x) - 1) for v, x in zip(variances, (a, b, c, d)))
    t = ((np.mean(a) - np.mean(b)) - (np.mean(c) - np.mean(d))) / se
    return float(2 * stats.t.sf(abs(t), df))


def effect_rows(pair, theirs, ours):
    first, second = pair
    rows = []
    for setting in SETTINGS:
        final = {name: {code: [m[-1] for m in runs[name][setting].values()] for code, runs in
                        (("mammoth", theirs), ("suite", ours))} for name in pair}
        cells = []
        for code in ("mammoth", "suite"):
            difference, p = welch(final[first][code], final[second][code])
            cells += [f"{difference:+.2f}", p_text(p)]
        agree = effect_test(final[first]["mammoth"], final[second]["mammoth"], final[first]["suite"],
                            final[second]["suite"])
        rows.append([f"{first} − {second}", setting, *cells, p_text(agree)])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.study.side_by_side", description=__doc__.split("\n")[0])
    parser.add_argument("--mammoth", required=True, help="Mammoth's results folder (holding class-il/, task-il/)")
    parser.add_argument("--suite", required=True, help="the suite's results.jsonl")
    parser.add_argument("--dataset", default="seq-cifar10")
    parser.add_argument("--suite_dataset", help="the suite's name of the same data where it differs (e.g. "
                                                "seq-mnist-5k beside Mammoth's seq-mnist on its files)")
    parser.add_argument("--models", nargs="+", required=True, help="model names, the same in both code bases")
    parser.add_argument("--effect", nargs="*", default=[], metavar="A:B", help="A's final accuracy minus B's")
    options = parser.parse_args(argv)
    pairs = [tuple(effect.split(":")) for effect in options.effect]
    for pair in pairs:
        if len(pair) != 2 or not set(pair) <= set(options.models):
            parser.error(f"argument --effect: {':'.join(pair)!r} is not A:B of two of --models")
    lines = read_lines([options.suite])[0]
    try:
        theirs = {model: read_mammoth(options.mammoth, options.dataset, model) for model in options.models}
        ours = {model: read_suite(lines, options.suite_dataset or options.dataset, model) for model in options.models}
    except SideBySideError as error:
        parser.error(str(error))
    for model in options.models:
        for code, runs in (("Mammoth", theirs), ("suite", ours)):
            if set(runs[model]) != set(SETTINGS):
                dataset = options.dataset if code == "Mammoth" else options.suite_dataset or options.dataset
                parser.error(f"no {code} run of {model} on {dataset}")
        print(f"{model}: Mammoth seeds {sorted(theirs[model]['class-il'])}, suite seeds "
              f"{sorted(ours[model]['class-il'])}")
    headers = ["model", "after task", "Mammoth Class-IL", "suite Class-IL", "p", "Mammoth Task-IL",
               "suite Task-IL", "p"]
    print(tabulate([row for model in options.models for row in per_task_rows(model, theirs[model], ours[model])],
                   headers=headers, tablefmt="github", disable_numparse=True))
    if pairs:
        print()
        print(tabulate([row for pair in pairs for row in effect_rows(pair, theirs, ours)],
                       headers=["effect (final)", "setting", "Mammoth Δ", "p", "suite Δ", "p", "p (Δ equal)"],
                       tablefmt="github", disable_numparse=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
