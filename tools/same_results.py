"""python tools/same_results.py BEFORE.jsonl AFTER.jsonl [--ignore FIELD ...]: whether two results files of the
same runs (e.g. grids/fixed-seed-check.yaml before and after a refactor) hold the same results, run key by run
key. Fields that differ between any two launches (times, run id, start, git, environment, paths) are left out;
each run whose other fields differ is printed with the first differing paths. Exit 0 when every run agrees."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils.plumbing.identity import LATER_FLAG_DEFAULTS  # noqa: E402

LAUNCH_ONLY = {"time_s", "train_time_s", "run_id", "started_at", "git", "environment", "sweep", "levers"}
PATHS = {"data_path", "results_path", "checkpoint_dir", "log_dir", "threads"}


def runs(path):
    """{key_hash: record} of a results file."""
    with open(path, encoding="utf-8") as f:
        return {record["key_hash"]: record for record in map(json.loads, f)}


def differences(before, after, prefix=""):
    """The paths (a.b[2]) at which two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [path for key in sorted(set(before) | set(after))
                for path in differences(before.get(key), after.get(key), f"{prefix}.{key}" if prefix else key)]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [path for i, (b, a) in enumerate(zip(before, after)) for path in differences(b, a, f"{prefix}[{i}]")]
    return [] if before == after else [prefix]


def comparable(record, ignored):
    kept = {name: value for name, value in record.items() if name not in LAUNCH_ONLY | ignored}
    args = {**LATER_FLAG_DEFAULTS, **record["args"]}  # a flag added since, at the value that gives the runs before it
    kept["args"] = {name: value for name, value in args.items() if name not in PATHS}
    return kept


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/same_results.py", description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--ignore", nargs="*", default=[], help="more top-level fields to leave out")
    options = parser.parse_args(argv)
    before, after = runs(options.before), runs(options.after)
    missing = sorted(set(before) ^ set(after))
    differing = 0
    for key in sorted(set(before) & set(after)):
        paths = differences(comparable(before[key], set(options.ignore)), comparable(after[key], set(options.ignore)))
        if paths:
            differing += 1
            args = after[key]["args"]
            print(f"{key} ({args['model']} {args['dataset']} mask {args['mask']}): {', '.join(paths[:6])}"
                  + (f" and {len(paths) - 6} more" if len(paths) > 6 else ""))
    for key in missing:
        print(f"{key}: only in {options.before if key in before else options.after}")
    print(f"{len(set(before) & set(after))} runs in both, {differing} differ, {len(missing)} in one file only")
    return 1 if differing or missing else 0


if __name__ == "__main__":
    sys.exit(main())
