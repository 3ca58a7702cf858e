"""The runs a report counts: each run key once. A run key is every resolved flag of a run but paths and
display flags (utils.plumbing.identity.flags_key), seed included; a line whose key an earlier line already
has is a duplicate. Duplicates with the same results are dropped (and named); lines of one key whose
results disagree are conflicts, which the report refuses unless told to keep the earliest line."""
import json
from typing import NamedTuple

from utils.plumbing.identity import flags_key
from utils.plumbing.results_file import Line

RESULT_FIELDS = ("class_il", "task_il")  # a rerun of the same key must reproduce these exactly
SHOWN = 5  # line references printed before "and N more"


class Repeat(NamedTuple):
    line: Line
    first: Line


def run_identity(record):
    return json.dumps(flags_key(record["args"]), sort_keys=True)


def unique_runs(lines):
    """(the first Line of each run key, [Repeat] with equal results, [Repeat] with different results)."""
    first, dropped, conflicts = {}, [], []
    for line in lines:
        earlier = first.setdefault(run_identity(line.record), line)
        if earlier is line:
            continue
        same = all(line.record.get(field) == earlier.record.get(field) for field in RESULT_FIELDS)
        (dropped if same else conflicts).append(Repeat(line, earlier))
    return list(first.values()), dropped, conflicts


def where(line):
    return f"{line.path}:{line.number}"


def describe_run(record):
    args = record["args"]
    return (f"{args.get('model')} | {args.get('dataset')} | mask {args.get('mask')} | buffer "
            f"{args.get('buffer_size')} | seed {args.get('seed')}")


def describe_repeats(repeats):
    """'b.jsonl:1 (= a.jsonl:4), ... and N more'."""
    shown = [f"{where(r.line)} (= {where(r.first)})" for r in repeats[:SHOWN]]
    more = f" and {len(repeats) - SHOWN} more" if len(repeats) > SHOWN else ""
    return ", ".join(shown) + more
