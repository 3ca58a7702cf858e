"""The results file, one JSON record per line: the check that a folder can take it, each record appended
whole on a fresh line under a lock (a torn tail left by a crash is set aside first), and reading that
names every line that is not a record by file and line number, so nothing is dropped without a word."""
import contextlib
import fcntl
import json
import os
from typing import NamedTuple

from utils.plumbing.console import count

RESULTS_FILE = "results.jsonl"
TORN_SUFFIX = ".torn"
READ_FIELDS = ("args", "class_il", "task_il")  # what the report and the sweep read of a record
CHUNK = 1 << 16


class ResultsPathError(ValueError):
    """A results folder whose file cannot be created or appended to; the message is one line."""


class Line(NamedTuple):
    path: str
    number: int
    record: dict


class BadLine(NamedTuple):
    path: str
    number: int
    why: str


def append_line(path, record):
    """Append the record to `path` as one whole line (a single write, flushed and fsynced), after
    repairing a tail without a newline; returns the repair's one-line description, or None."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time, so a repair never races an append
        note = repair_tail(f, path)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return note


def save_record(results_path, record, fallback_dir):
    """Append to the results file; if the disk refuses, keep the record in `fallback_dir`.
    Returns (path written, the error that the results file gave or None, the tail repair's note or None)."""
    target = os.path.join(results_path, RESULTS_FILE)
    try:
        return target, None, append_line(target, record)
    except OSError as error:
        fallback = os.path.join(fallback_dir, f"result-{record['run_id']}.jsonl")
        return fallback, error, append_line(fallback, record)


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
    # an existing file is opened for appending; a missing one is never created here (another process may
    # create it meanwhile): a probe file of this process's own stands in for it
    probe = target if os.path.exists(target) else f"{target}.probe-{os.getpid()}"
    try:
        for path in created:
            os.mkdir(path)
        with open(probe, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ResultsPathError(f"{results_path!r} is not allowed: cannot append to {target} "
                               f"({error.strerror or error})") from None
    finally:
        if probe != target and os.path.isfile(probe):
            os.remove(probe)
        for path in reversed(created):
            with contextlib.suppress(OSError):  # a folder another process has written into stays
                os.rmdir(path)


def tail_start(f, size):
    """Offset just after the last newline before `size` (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - CHUNK)
        f.seek(start)
        newline = f.read(end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def repair_tail(f, path):
    """A last line without its newline: a whole record gets its newline; anything else is a torn
    record, moved to <path>.torn and cut from the file."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return None
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return None
    start = tail_start(f, size)
    f.seek(start)
    fragment = f.read(size - start)
    if parse_record(fragment) is not None:
        f.write(b"\n")
        return f"{path}: its last record had no newline; added one before appending"
    with open(path + TORN_SUFFIX, "ab") as aside:
        aside.write(fragment + b"\n")
        aside.flush()
        os.fsync(aside.fileno())
    f.truncate(start)
    return (f"{path} ended in a torn line ({len(fragment)} bytes, no newline, not a record): moved it to "
            f"{path}{TORN_SUFFIX} before appending")


def parse_record(text):
    """The record a line holds, or None."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and all(field in record for field in READ_FIELDS) else None


def read_lines(paths):
    """([Line] of every record, [BadLine] of every other non-blank line) of the files, in order."""
    lines, bad = [], []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        rows = data.split(b"\n")
        for number, text in enumerate(rows, 1):
            if not text.strip():
                continue
            record = parse_record(text)
            if record is not None:
                lines.append(Line(path, number, record))
            elif number == len(rows):
                bad.append(BadLine(path, number, "torn last line (no newline)"))
            else:
                bad.append(BadLine(path, number, "not a results record"))
    return lines, bad


def keys_of(record):
    """The run key hashes a record answers to: its own and, for a sweep's run, the one the driver
    computed (they differ only where --device auto resolved differently on a worker); for a line whose args
    hold a value that is no flag (written before it left the key), the hash of its key as computed now."""
    from utils.plumbing.identity import NOT_FLAGS, flags_key, key_hash

    keys = {record.get(field) for field in ("key_hash", "sweep_key_hash")} - {None}
    args = record.get("args")
    if isinstance(args, dict) and any(name in args for name in NOT_FLAGS):
        keys.add(key_hash(flags_key(args)))
    return keys


def find_key(path, key_hash):
    """The first Line of `path` whose record has run key `key_hash`, or None (only lines that hold the
    hash's text, or a value that is no flag in their args, are parsed)."""
    from utils.plumbing.identity import NOT_FLAGS

    if not os.path.isfile(path):
        return None
    needles = [f'"{key_hash}"'.encode()] + [f'"{name}": "'.encode() for name in NOT_FLAGS]
    with open(path, "rb") as f:
        for number, text in enumerate(f, 1):
            if any(needle in text for needle in needles):
                record = parse_record(text)
                if record is not None and key_hash in keys_of(record):
                    return Line(path, number, record)
    return None


def describe_bad_lines(bad):
    """'results.jsonl: 2 lines (3, 7)' per file, joined; '' when there are none."""
    by_path = {}
    for line in bad:
        by_path.setdefault(line.path, []).append(line)
    parts = []
    for path, lines in by_path.items():
        numbers = ", ".join(str(line.number) + (" torn" if line.why.startswith("torn") else "") for line in lines)
        parts.append(f"{path}: {count(len(lines), 'line')} ({numbers})")
    return "; ".join(parts)
