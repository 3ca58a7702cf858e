"""One JSON line per run in <results_path>/results.jsonl, and the closing console table."""
import math
import os
import subprocess

from tabulate import tabulate

from utils.results_file import RESULTS_FILE, append_line

METRICS = ("final_avg", "forgetting", "bwt", "fwt", "plasticity", "stability")
SOURCE_FOLDERS = ("models", "datasets", "backbone", "utils")


class ResultsPathError(ValueError):
    """A results folder whose file cannot be created or appended to; the message is one line."""


def json_safe(value):
    """JSON has no infinities or NaN: such floats are stored as the strings "-inf", "inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def git_revision():
    """The commit of this checkout, +dirty when tracked files changed or files that are not ignored
    were added under the source folders (a dropped-in model); None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*arguments):
        return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
        added = git("status", "--porcelain", "--untracked-files=all", "--", *SOURCE_FOLDERS)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if changed.stdout.strip() or added.stdout.strip() else "")


def check_results_path(results_path):
    """Make sure <results_path>/results.jsonl can be created and appended to, leaving nothing behind."""
    target = os.path.join(results_path, RESULTS_FILE)
    created, ancestor = [], os.path.abspath(results_path)  # the folders to make, and the first that exists
    while not os.path.exists(ancestor):
        created.insert(0, ancestor)
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ResultsPathError(f"{results_path!r} is not allowed: {ancestor} is a file, not a folder")
    if os.path.isdir(target):
        raise ResultsPathError(f"{results_path!r} is not allowed: {target} is a folder")
    existed = os.path.exists(target)
    try:
        for path in created:
            os.mkdir(path)
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ResultsPathError(f"{results_path!r} is not allowed: cannot append to {target} "
                               f"({error.strerror or error})") from None
    finally:
        if not existed and os.path.isfile(target):
            os.remove(target)
        for path in reversed(created):
            if os.path.isdir(path):
                os.rmdir(path)


def accuracy(correct, total):
    """Percent from counts, exact where the quotient is (4/5 -> 80.0)."""
    return 100 * int(correct) / int(total)


def build_record(args, outcome, time_s, identity, environment, key_hash):
    """The results line of a run; `outcome` is what the training loop returned, `identity` its
    run id and start time."""
    return json_safe({
        "model": args.model, "dataset": args.dataset, "mask": args.mask, "mask_value": args.mask_value,
        "mask_buffer": args.mask_buffer, "buffer_size": args.buffer_size, "seed": args.seed, "args": vars(args),
        "class_il": outcome["class_il"], "task_il": outcome["task_il"], "time_s": time_s,
        "train_time_s": outcome["train_time_s"], "skipped_steps": outcome["skipped_steps"], "git": git_revision(),
        "run_id": identity["run_id"], "started_at": identity["started_at"], "key_hash": key_hash,
        "environment": environment, "recency_bias": outcome["recency_bias"], "old_accuracy": outcome["old_accuracy"],
        "new_accuracy": outcome["new_accuracy"], "task_confusion": outcome["task_confusion"],
        "diagnostics": outcome["diagnostics"],
    })


def save_record(results_path, record, fallback_dir):
    """Append to the results file; if the disk refuses, keep the record in `fallback_dir`.
    Returns (path written, the error that the results file gave or None, the tail repair's note or None)."""
    target = os.path.join(results_path, RESULTS_FILE)
    try:
        return target, None, append_line(target, record)
    except OSError as error:
        fallback = os.path.join(fallback_dir, f"result-{record['run_id']}.jsonl")
        return fallback, error, append_line(fallback, record)


def format_table(record):
    """Class-IL and Task-IL figures of one run, side by side."""
    def cell(value):
        return "n/a" if value is None else f"{value:.2f}"
    rows = [[name] + [cell(record[setting][name]) for setting in ("class_il", "task_il")] for name in METRICS]
    rows.append(["recency_bias", cell(record["recency_bias"][-1]), "—"])
    table = tabulate(rows, headers=["metric (%)", "Class-IL", "Task-IL"], tablefmt="github")
    if record["class_il"]["fwt"] is None and not record["args"].get("eval_future"):
        table += "\nfwt: n/a, needs --eval_future (evaluation of future tasks and of the untrained network)"
    return table
