"""python -m utils.sweep GRID.yaml | --grid KEY=V1,V2 ... [-- flags for every run]

Runs every run of a grid, validated first with main.py's own parser, locally in reused worker
processes or on a Ray cluster. The driver alone appends to <results_path>/results.jsonl; runs whose key
is already there are skipped, so rerunning the same command resumes an interrupted sweep.
"""
import argparse
import os
import sys
import time

from tqdm import tqdm

from utils.args import ArgumentParser, positive_int
from utils.study.grid import GridError, block_runs, load_grid_file, parse_inline

PROG = "python -m utils.sweep"


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
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per CPU run (default: 1)")
    parser.add_argument("--runs_per_gpu", type=positive_int, default=1, help="runs sharing one GPU (default: 1)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="(default: local)")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: start a local instance)")
    parser.add_argument("--dry_run", action="store_true", help="print the number of runs and each command, run nothing")
    return parser


def grid_runs(options, common):
    """(name, [(block number, argv)]) of the grid, with the flags every run shares."""
    if bool(options.grid_file) == bool(options.grid):
        raise GridError("give a grid file or --grid KEY=V1,V2 ..., not both or neither")
    if options.grid:
        name, blocks, shared = "inline", [parse_inline(options.grid)], []
    else:
        name, blocks, shared = load_grid_file(options.grid_file)
    runs = [(number, argv) for number, block in enumerate(blocks, 1)
            for argv in block_runs(block, shared + common)]
    return options.name or name, runs


def validate(runs, results_path, threads):
    """Each run's full argv and key, parsed with main.py's parser; GridError naming block, run and flag."""
    from utils.study.worker import key_of

    checked = []
    for index, (number, argv) in enumerate(runs, 1):
        full = argv + ["--non_verbose", "--results_path", results_path, "--threads", str(threads)]
        try:
            key, key_hash = key_of(full)
        except ValueError as error:
            raise GridError(f"block {number}, run {index} ({' '.join(argv)}): {error}; if that flag belongs to only "
                            f"some of the block's values, split the block") from None
        checked.append((full, key_hash))
    return checked


def finished_keys(results_file):
    """Key hashes of every run already in the results file: the run's own and, for a sweep's run, the
    one the driver computed (they differ only where --device auto resolved differently on a worker)."""
    from utils.study.groups import read_results

    records = read_results([results_file]) if os.path.isfile(results_file) else []
    return {record.get(field) for record in records for field in ("key_hash", "sweep_key_hash")} - {None}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = build_parser()
    options = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        name, runs = grid_runs(options, common)
        checked = validate(runs, options.results_path, options.threads)
    except GridError as error:
        parser.error(str(error))
    if options.dry_run:
        print(f"{len(checked)} runs")
        for full, _ in checked:
            print("python main.py " + " ".join(full))
        return 0
    from utils.results import RESULTS_FILE, append_record

    results_file = os.path.join(options.results_path, RESULTS_FILE)
    os.makedirs(options.results_path, exist_ok=True)
    open(results_file, "a", encoding="utf-8").close()  # exists before any worker probes the path
    done = finished_keys(results_file)
    todo, seen, driver_hash = [], set(done), {}
    for full, key_hash in checked:
        if key_hash not in seen:
            todo.append(full)
            seen.add(key_hash)
            driver_hash[tuple(full)] = key_hash
    print(f"sweep {name}: {len(checked)} runs, {len(checked) - len(todo)} already in {results_file}, "
          f"{len(todo)} to run", flush=True)
    failures = []
    bar = tqdm(total=len(todo), desc=f"sweep {name}", unit="run", dynamic_ncols=True)

    def on_result(run_argv, outcome):
        if "record" in outcome:
            append_record(options.results_path, {**outcome["record"], "sweep_key_hash": driver_hash[tuple(run_argv)]})
        else:
            failures.append(outcome)
        bar.set_postfix(failed=len(failures))
        bar.update()
    start = time.perf_counter()
    try:
        dispatch(options, todo, name, on_result)
        bar.close()
    except KeyboardInterrupt:
        bar.close()
        print(f"{PROG}: interrupted; finished runs are in {results_file}; run the same command to resume",
              file=sys.stderr)
        return 130
    print(f"sweep {name}: {len(todo) - len(failures)} runs done, {len(failures)} failed, "
          f"{time.perf_counter() - start:.1f} s")
    for failure in failures:
        print(f"failed: {failure['command']}\n  {failure['error']}", file=sys.stderr)
    return 1 if failures else 0


def dispatch(options, runs, name, on_result):
    if not runs:
        return
    if options.backend == "ray":
        from utils.study.ray_backend import run_ray
        run_ray(runs, name, options.address, options.threads, options.runs_per_gpu, on_result)
        return
    from utils.study.local import default_workers, run_local
    gpus = gpus_here()
    workers = options.workers or default_workers(options.threads, gpus, options.runs_per_gpu)
    run_local(runs, name, workers, options.threads, gpus, on_result)


def gpus_here():
    import torch

    return torch.cuda.device_count()


if __name__ == "__main__":
    sys.exit(main())
