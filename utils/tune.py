"""python -m utils.tune TUNE.yaml --results_path DIR: tune every group of a grid on a validation split, then run
each group's picked configuration on the test split over other seeds.

1. selection: every trial of every group with --validation F (a seeded, class-balanced part of the training
   split held out and evaluated on; the test split is never read) over the selection seeds: DIR/selection/;
2. the pick: per group the trial with the highest mean of the selection metric: DIR/picked.json;
3. final: each group's picked configuration, trained on the whole training split and evaluated on the test split,
   over the final seeds (none of them a selection seed), run with --config DIR/picked.json: DIR/final/.
Each stage is a sweep (utils/sweep.py): it resumes, runs in parallel and on Ray as any sweep does."""
import argparse
import json
import os
import sys

from utils.plumbing.console import count
from utils.plumbing.files import write_atomically
from utils.plumbing.parser import ArgumentParser, positive_int
from utils.study.grid import GridError

PROG = "python -m utils.tune"
DEFAULTS = {"validation": 0.1, "selection_seeds": "0-2", "final_seeds": "10-14", "select": "class_il_final_avg"}


def build_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("tune_file", help="a tune grid (grids/tune-*.yaml): blocks of flags and a tune: section")
    parser.add_argument("--results_path", default="results/tune",
                        help="folder of selection/, picked.json and final/ (default: results/tune)")
    parser.add_argument("--stage", choices=("all", "selection", "final"), default="all",
                        help="selection (and the pick), final (needs the pick), or all (default)")
    parser.add_argument("--workers", type=positive_int, help="parallel runs of each sweep (as utils.sweep)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="(default: local)")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT")
    parser.add_argument("--dry_run", action="store_true", help="print each stage's runs and the budget; run nothing")
    return parser


def settings(tune, path):
    """The tune section with its defaults: (tuned flags, fraction, selection seeds, final seeds, metric)."""
    from utils.study.tuning import SELECTABLE, seeds

    values = {**DEFAULTS, **{key: value for key, value in tune.items() if key != "flags"}}
    fraction = values["validation"]
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise GridError(f"{path}: tune: validation: {fraction!r} is not a fraction between 0 and 1")
    if values["select"] not in SELECTABLE:
        raise GridError(f"{path}: tune: select: {values['select']!r} is not allowed: choose from "
                        f"{', '.join(SELECTABLE)} (higher is better)")
    selection, final = seeds(values["selection_seeds"], "selection_seeds"), seeds(values["final_seeds"], "final_seeds")
    if set(selection) & set(final):
        raise GridError(f"{path}: tune: the final seeds {final} share {sorted(set(selection) & set(final))} with the "
                        f"selection seeds: a picked configuration must be tested on seeds it was not picked on")
    flags = tune["flags"] if isinstance(tune["flags"], list) else [tune["flags"]]
    return [str(flag) for flag in flags], float(fraction), selection, final, values["select"]


def write_text(path, text):
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_grid(path, name, blocks, common):
    """The stage's grid, beside its results: what the stage ran, as a grid any sweep can rerun."""
    import yaml

    write_text(path, yaml.safe_dump({"name": name, "common": common, "blocks": blocks}, sort_keys=False))


def sweep(grid_path, results, options):
    from utils import sweep as sweep_command

    argv = [grid_path, "--results_path", results]
    argv += ["--workers", str(options.workers)] if options.workers else []
    argv += ["--backend", options.backend] + (["--address", options.address] if options.address else [])
    argv += ["--dry_run"] if options.dry_run else []
    return sweep_command.main(argv)


def selection_records(results, fraction):
    """The selection runs' results lines: validation runs only (a test-split line is never read for a pick)."""
    from utils.plumbing.results_file import read_lines
    from utils.study.runs import unique_runs

    if not os.path.isfile(results):
        return []
    lines, _ = read_lines([results])
    lines, _, _ = unique_runs(lines)
    return [line.record for line in lines if line.record["args"].get("validation") == fraction]


def main(argv=None):
    from utils.study.tuning import load_tune_file, pick, picked_file, trials_by_group

    parser = build_parser()
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        name, blocks, common, tune = load_tune_file(options.tune_file)
        tuned, fraction, selection_seeds, final_seeds, metric = settings(tune, options.tune_file)
        groups = trials_by_group(blocks, common, set(tuned))
    except GridError as error:
        parser.error(str(error))
    trials = len(next(iter(groups.values())))
    print(f"tune {name}: {count(len(groups), 'group')} × {count(trials, 'trial')} × {len(selection_seeds)} selection "
          f"seeds on a {fraction:.0%} validation split, then {count(len(groups), 'picked configuration')} × "
          f"{len(final_seeds)} final seeds: {len(groups) * trials * len(selection_seeds)} + "
          f"{len(groups) * len(final_seeds)} runs")
    os.makedirs(options.results_path, exist_ok=True)
    picked_path = os.path.join(options.results_path, "picked.json")
    if options.stage in ("all", "selection"):
        grid = os.path.join(options.results_path, "selection.yaml")
        write_grid(grid, f"{name}-selection", [{**block, "seed": list(selection_seeds)} for block in blocks],
                   {**common, "validation": fraction})
        status = sweep(grid, os.path.join(options.results_path, "selection"), options)
        if status or options.dry_run:
            return status
        records = selection_records(os.path.join(options.results_path, "selection", "results.jsonl"), fraction)
        try:
            entries = pick(groups, records, metric, selection_seeds)
        except GridError as error:
            parser.error(str(error))
        about = {"grid": options.tune_file, "tuned": tuned, "metric": metric, "validation": fraction,
                 "selection_seeds": selection_seeds, "final_seeds": final_seeds,
                 "rule": f"highest mean {metric} over the selection seeds on the validation split; ties: the first "
                         f"trial in the grid's order"}
        write_text(picked_path, picked_file(entries, about))
        print(f"picked {count(len(entries), 'configuration')} into {picked_path}")
    if options.stage in ("all", "final"):
        if not os.path.isfile(picked_path):
            parser.error(f"--stage final: {picked_path} does not exist: run the selection stage first")
        with open(picked_path, encoding="utf-8") as f:
            entries = json.load(f)["entries"]
        grid = os.path.join(options.results_path, "final.yaml")
        write_grid(grid, f"{name}-final", [{**entry["group"], "seed": list(final_seeds)} for entry in entries],
                   {"config": os.path.abspath(picked_path)})
        return sweep(grid, os.path.join(options.results_path, "final"), options)
    return 0


if __name__ == "__main__":
    from utils.plumbing.console import run_command

    sys.exit(run_command(main, PROG, on_interrupt="finished runs are on disk; run the same command to resume"))
