"""python -m utils.sweep GRID.yaml | --grid KEY=V1,V2 ... [-- flags for every run]

Runs every run of a grid, validated first with main.py's own parser, locally in reused worker
processes or on a Ray cluster. The driver alone appends to <results_path>/results.jsonl; runs whose key
is already there are skipped, so rerunning the same command resumes an interrupted sweep.
"""
import argparse
import json
import os
import re
import sys
import time

from tqdm import tqdm

from utils.plumbing.console import announced_interrupt, bars_allowed, command_line, count
from utils.plumbing.parser import ArgumentParser, positive_int
from utils.study.grid import GridError, block_runs, check_flag_places, load_grid_file, parse_inline

PROG = "python -m utils.sweep"
NOT_IN_A_SWEEP = {"rerun": "a sweep runs each key once (a second line would be a duplicate)",
                  "resume": "a sweep resumes by itself: rerun the same command",
                  "checkpoint_dir": "parallel runs would share one checkpoint folder"}
FLAG_IN_ERROR = re.compile(r"argument (--[\w-]+)")


def build_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example: python -m utils.sweep --grid model=der,derpp mask=none,ninf seed=0-4 "
                                   "-- --buffer_size 20")
    parser.add_argument("grid_file", nargs="?", help="a YAML grid (see grids/)")
    parser.add_argument("--grid", nargs="+", metavar="KEY=V1,V2", help="an inline block instead of a file")
    parser.add_argument("--name", help="the sweep's name in the results (default: the grid file's name, or 'inline')")
    parser.add_argument("--results_path", default="results", help="folder of results.jsonl (default: results)")
    parser.add_argument("--workers", type=positive_int, help="parallel runs (default: cores / --threads, or GPUs × "
                                                             "--runs_per_gpu)")
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads per CPU run (default: the cores shared out among the runs to do, so 1 "
                             "when there are at least as many runs as cores: README, 'Sweeps')")
    parser.add_argument("--runs_per_gpu", type=positive_int, default=1, help="runs sharing one GPU (default: 1)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="(default: local)")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: start a local instance)")
    parser.add_argument("--dry_run", action="store_true",
                        help="print the number of runs and each command (marking those already done), run nothing")
    return parser


def sweep_options(parser):
    return {option[2:] for option in parser.options() if option.startswith("--")}


def grid_runs(options, common, parser):
    """(name, [(block label, argv)]) of the grid, with the flags every run shares."""
    if bool(options.grid_file) == bool(options.grid):
        raise GridError("give a grid file or --grid KEY=V1,V2 ..., not both or neither")
    from utils.plumbing.cli import every_option

    options_of_runs = every_option()
    negatable = {option[5:] for option in options_of_runs if option.startswith("--no-")}
    if options.grid:
        name, blocks, shared, labels = "inline", [parse_inline(options.grid)], [], ["--grid"]
    else:
        name, blocks, shared = load_grid_file(options.grid_file, negatable)
        labels = [f"{options.grid_file}: block {number}" for number in range(1, len(blocks) + 1)]
    check_flag_places(list(zip(labels, blocks)), shared, common, sweep_options(parser) - {"help"}, NOT_IN_A_SWEEP)
    check_switches(zip(labels, blocks), options_of_runs)
    runs = []
    for label, block in zip(labels, blocks):
        try:
            runs += [(label, argv) for argv in block_runs(block, shared + common, negatable)]
        except GridError as error:
            raise GridError(f"{label}: {error}") from None
    return options.name or name, runs


def check_switches(labelled_blocks, options_of_runs):
    """A flag given without a value (KEY alone inline, `true` in YAML) must be an on/off flag."""
    takes_value = {option[2:] for option, action in options_of_runs.items() if action.nargs != 0}
    for label, block in labelled_blocks:
        for name, value in block.items():
            if name in takes_value and any(v is True for v in (value if isinstance(value, list) else [value])):
                raise GridError(f"{label}: {name!r} has no value, but --{name} takes one: write {name}=VALUE "
                                f"(a flag alone is only for on/off flags such as eval_future)")


def flag_value(argv, flag):
    """The tokens that follow `flag` in argv up to the next flag, or None where it is absent."""
    if flag not in argv:
        return None
    start = argv.index(flag) + 1
    end = next((i for i in range(start, len(argv)) if argv[i].startswith("--")), len(argv))
    return tuple(argv[start:end])


def validate(runs, results_path):
    """Each run's full argv and key, parsed with main.py's parser; GridError naming block, run and flag,
    with "split the block" only where another run of the block takes the same flag and value."""
    from utils.study.worker import key_of

    checked, errors = [], []
    for index, (label, argv) in enumerate(runs, 1):
        full = argv + ["--quiet", "--results_path", results_path]
        try:
            checked.append((label, full, key_of(full)[1]))
        except ValueError as error:
            errors.append((label, index, argv, str(error)))
    if errors:
        label, index, argv, error = errors[0]
        flag = FLAG_IN_ERROR.search(error)
        value = flag and flag_value(argv, flag.group(1))
        taken = value is not None and any(other == label and flag_value(full, flag.group(1)) == value
                                          for other, full, _ in checked)
        hint = "; other runs of the block take it, so split the block" if taken else ""
        raise GridError(f"{label}, run {index} ({' '.join(argv)}): {error}{hint}")
    return [(full, key_hash) for _, full, key_hash in checked]


def finished_keys(results_file):
    """Key hashes of every run already in the results file, after saying which lines could not be read."""
    from utils.plumbing.results_file import describe_bad_lines, keys_of, read_lines

    if not os.path.isfile(results_file):
        return set()
    lines, bad = read_lines([results_file])
    if bad:
        print(f"warning: {count(len(bad), 'line')} of the results file could not be read; their runs count as not "
              f"done: {describe_bad_lines(bad)}", file=sys.stderr)
    return set().union(*(keys_of(line.record) for line in lines))


TO_RUN, REPEATED, DONE = "to run", "repeats an earlier run of the grid", "already in the results file"


def plan(checked, done):
    """The status of each checked run (TO_RUN, REPEATED or DONE), in order."""
    seen, statuses = set(), []
    for _, key_hash in checked:
        statuses.append(REPEATED if key_hash in seen else DONE if key_hash in done else TO_RUN)
        seen.add(key_hash)
    return statuses


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = build_parser()
    options = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        name, runs = grid_runs(options, common, parser)
        checked = validate(runs, options.results_path)
    except GridError as error:
        parser.error(str(error))
    from utils.plumbing.results_file import RESULTS_FILE

    results_file = os.path.join(options.results_path, RESULTS_FILE)
    statuses = plan(checked, finished_keys(results_file))
    if not options.threads:  # Ray takes it as each run's CPUs and GPU runs have their own device: 1 there
        shares_cores = options.backend == "local" and not gpus_here()
        options.threads = threads_per_run(statuses.count(TO_RUN)) if shares_cores else 1
    checked = [(full + ["--threads", str(options.threads)], key_hash) for full, key_hash in checked]
    todo = [full for (full, _), status in zip(checked, statuses) if status == TO_RUN]
    driver_hash = {tuple(full): key_hash for (full, key_hash), status in zip(checked, statuses) if status == TO_RUN}
    repeated = statuses.count(REPEATED)
    summary = (count(len(checked), "run") + (f" ({repeated} repeating an earlier run of the grid, run once)"
                                             if repeated else "")
               + f", {statuses.count(DONE)} already in {results_file}, {len(todo)} to run")
    if options.dry_run:
        print(summary)
        for (full, _), status in zip(checked, statuses):
            print(command_line(full) + ("" if status == TO_RUN else f"  # {status}"))
        return 0
    os.makedirs(options.results_path, exist_ok=True)
    open(results_file, "a", encoding="utf-8").close()  # exists before any worker probes the path
    print(f"sweep {name}: {summary}", flush=True)
    return run_sweep(options, name, todo, driver_hash, results_file)


def run_sweep(options, name, todo, driver_hash, results_file):
    from utils.plumbing.results_file import append_line

    failures, retried, written = [], [], []
    bar = tqdm(total=len(todo), desc=f"sweep {name}", unit="run", dynamic_ncols=True, disable=not bars_allowed())

    def on_result(run_argv, outcome):
        if "record" in outcome:
            record = {**outcome["record"], "sweep_key_hash": driver_hash[tuple(run_argv)]}
            try:
                repair = append_line(results_file, record)
            except OSError as error:  # the run is reported failed, its line kept in the failure message
                failures.append({"command": outcome["command"], "error": f"could not append to {results_file} "
                                 f"({error.strerror or error}); its results line: {json.dumps(record)}"})
                bar.update()
                return
            written.append(run_argv)
            if repair:
                bar.write(f"warning: {repair}", file=sys.stderr)
        else:
            failures.append(outcome)
        bar.set_postfix(failed=len(failures))
        bar.update()

    def on_retry(run_argv, attempt, error):
        retried.append(run_argv)
        bar.write(f"retrying (attempt {attempt}) after {error}: {command_line(run_argv)}", file=sys.stderr)
    start = time.perf_counter()
    try:
        with announced_interrupt(f"{PROG}: stopping: ending the runs in progress (finished runs are on disk)"):
            dispatch(options, todo, name, on_result, on_retry)
        bar.close()
    except KeyboardInterrupt as error:
        bar.close()
        print(f"{PROG}: {'terminated' if getattr(error, 'status', 130) == 143 else 'interrupted'}; "
              f"{count(len(written), 'finished run')} of this sweep {'is' if len(written) == 1 else 'are'} in "
              f"{results_file}; run the same command to resume", file=sys.stderr)
        return getattr(error, "status", 130)
    retries = f", {count(len({tuple(a) for a in retried}), 'run')} retried" if retried else ""
    print(f"sweep {name}: {count(len(todo) - len(failures), 'run')} done, {len(failures)} failed{retries}, "
          f"{time.perf_counter() - start:.1f} s")
    for run_argv in dict.fromkeys(map(tuple, retried)):
        print(f"retried after a lost worker or node: {command_line(run_argv)}", file=sys.stderr)
    for failure in failures:
        print(f"failed: {failure['command']}\n  {failure['error']}", file=sys.stderr)
    return 1 if failures else 0


def threads_per_run(runs):
    """The CPU cores shared out among `runs` runs, at least 1 each: with as many runs as cores or more, one
    thread per run, which gave the most runs per hour on 2 cores for seq-digits, seq-mnist-5k and the CIFAR-10
    slice alike (README, 'Sweeps')."""
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, min(runs, cores)))


def dispatch(options, runs, name, on_result, on_retry):
    if not runs:
        return
    if options.backend == "ray":
        from utils.study.ray_backend import run_ray
        run_ray(runs, name, options.address, options.threads, options.runs_per_gpu, on_result, on_retry)
        return
    from utils.study.local import default_workers, run_local
    gpus = gpus_here()
    workers = options.workers or default_workers(options.threads, gpus, options.runs_per_gpu)
    run_local(runs, name, workers, options.threads, gpus, on_result)


def gpus_here():
    import torch

    return torch.cuda.device_count()


if __name__ == "__main__":
    from utils.plumbing.console import run_command

    sys.exit(run_command(main, PROG, on_interrupt="no run was started"))
