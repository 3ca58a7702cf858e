"""One JSON line per run in <results_path>/results.jsonl, and the closing console table."""
import json
import math
import os
import subprocess

from tabulate import tabulate

METRICS = ("final_avg", "forgetting", "bwt", "fwt", "plasticity", "stability")


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
    """The commit of this checkout (+dirty when it has uncommitted changes), or None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def build_record(args, outcome, time_s):
    """The results line of a run; `outcome` is what the training loop returned."""
    return json_safe({
        "model": args.model, "dataset": args.dataset, "mask": args.mask, "mask_value": args.mask_value,
        "mask_buffer": args.mask_buffer, "buffer_size": args.buffer_size, "seed": args.seed, "args": vars(args),
        "class_il": outcome["class_il"], "task_il": outcome["task_il"], "time_s": time_s,
        "train_time_s": outcome["train_time_s"], "skipped_steps": outcome["skipped_steps"], "git": git_revision(),
    })


def append_record(results_path, record):
    """Append the record as one whole line: a single write, flushed and fsynced."""
    os.makedirs(results_path, exist_ok=True)
    line = json.dumps(record, allow_nan=False) + "\n"
    with open(os.path.join(results_path, "results.jsonl"), "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def format_table(record):
    """Class-IL and Task-IL figures of one run, side by side."""
    def cell(value):
        return "n/a" if value is None else f"{value:.2f}"
    rows = [[name] + [cell(record[setting][name]) for setting in ("class_il", "task_il")] for name in METRICS]
    return tabulate(rows, headers=["metric (%)", "Class-IL", "Task-IL"], tablefmt="github")
