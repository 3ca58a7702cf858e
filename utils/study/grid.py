"""Grids: blocks that map main.py flags to one value or a list; a block's runs are the cartesian
product of its lists. Written as a YAML file or inline (`model=der,derpp seed=0-4 -- --buffer_size 20`)."""
import itertools
import os
import re

RANGE = re.compile(r"^(\d+)-(\d+)$")


class GridError(ValueError):
    """A grid that cannot be read; the message is the one line users see."""


def expand(value):
    """A block's value -> the list of values it sweeps: lists as given, "A-B" as the integers A..B."""
    if isinstance(value, list):
        return [item for entry in value for item in expand(entry)] if value else [None]
    if isinstance(value, str) and RANGE.match(value.strip()):
        low, high = map(int, RANGE.match(value.strip()).groups())
        if high < low:
            raise GridError(f"range {value!r} is empty: write LOW-HIGH with LOW <= HIGH")
        return list(range(low, high + 1))
    return [value]


def flag_tokens(name, value):
    """`--name value` for one flag; True -> `--name`; False or None -> nothing; a tuple -> several values."""
    if value is None or value is False:
        return []
    if value is True:
        return [f"--{name}"]
    if isinstance(value, tuple):
        return [f"--{name}", *map(str, value)]
    return [f"--{name}", str(value)]


def block_runs(block, common=()):
    """The argv of every run of one block (its lists' cartesian product, in the order written)."""
    names = list(block)
    values = [expand(block[name]) for name in names]
    return [[token for name, value in zip(names, combination) for token in flag_tokens(name, value)] + list(common)
            for combination in itertools.product(*values)]


def normalize_block(block, where):
    if not isinstance(block, dict) or not block:
        raise GridError(f"{where}: a block maps main.py flags to a value or a list of values")
    normalized = {}
    for name, value in block.items():
        name = str(name).lstrip("-")
        if isinstance(value, dict):
            raise GridError(f"{where}: flag {name} maps to a mapping; give a value or a list")
        if isinstance(value, list) and any(isinstance(v, list) for v in value):
            value = [tuple(v) if isinstance(v, list) else v for v in value]
        normalized[name] = value
    return normalized


def load_grid_file(path):
    """(name, blocks, common argv) of a YAML grid: a list of blocks, one block, or a mapping with
    `blocks` (and optional `name` and `common`, flags every block shares)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as error:
        raise GridError(f"{path}: cannot read ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    name = os.path.splitext(os.path.basename(path))[0]
    common = {}
    if isinstance(data, dict) and "blocks" in data:
        name, common, data = data.get("name", name), data.get("common") or {}, data["blocks"]
    blocks = data if isinstance(data, list) else [data]
    blocks = [normalize_block(block, f"{path}: block {i + 1}") for i, block in enumerate(blocks)]
    common = normalize_block(common, f"{path}: common") if common else {}
    return str(name), blocks, [t for key, value in common.items() for t in flag_tokens(key, value)]


def scalar(text):
    """An inline value as YAML would read it (true/false, numbers stay text for main.py to check)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def parse_inline(tokens):
    """One block from `KEY=V1,V2 ...` tokens; KEY alone means KEY=true."""
    block = {}
    for token in tokens:
        key, _, values = token.partition("=")
        key = key.lstrip("-")
        if not key:
            raise GridError(f"--grid: {token!r} is not KEY=V1,V2,...")
        block[key] = True if not _ else [scalar(v) for v in values.split(",")]
    if not block:
        raise GridError("--grid: give at least one KEY=V1,V2,...")
    return block
