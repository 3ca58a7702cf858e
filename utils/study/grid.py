"""Grids: blocks that map main.py flags to one value or a list; a block's runs are the cartesian
product of its lists. Written as a YAML file or inline (`model=der,derpp seed=0-4 -- --buffer_size 20`)."""
import difflib
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


def flag_tokens(name, value, negatable=frozenset()):
    """`--name value` for one flag; True -> `--name`; False -> `--no-name` for a flag in `negatable` (an on/off
    flag whose default may be on), else nothing, as None; a tuple -> several values."""
    if value is False and name in negatable:
        return [f"--no-{name}"]
    if value is None or value is False:
        return []
    if value is True:
        return [f"--{name}"]
    if isinstance(value, tuple):
        return [f"--{name}", *map(str, value)]
    return [f"--{name}", str(value)]


def block_runs(block, common=(), negatable=frozenset()):
    """The argv of every run of one block (its lists' cartesian product, in the order written)."""
    names = list(block)
    values = [expand(block[name]) for name in names]
    return [[token for name, value in zip(names, combination) for token in flag_tokens(name, value, negatable)]
            + list(common) for combination in itertools.product(*values)]


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


GRID_KEYS = ("name", "common", "blocks")


def read_yaml(path):
    """A YAML file's content, or a GridError naming the file and what is wrong with it."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as error:
        raise GridError(f"{path}: cannot read ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None


def load_grid_file(path, negatable=frozenset()):
    """(name, blocks, common argv) of a YAML grid: a list of blocks, one block, or a mapping with
    `blocks` (and optional `name` and `common`, flags every block shares)."""
    data = read_yaml(path)
    name = os.path.splitext(os.path.basename(path))[0]
    common = {}
    check_layout(data, path)
    if isinstance(data, dict) and "blocks" in data:
        name, common, data = data.get("name", name), data.get("common") or {}, data["blocks"]
    blocks = data if isinstance(data, list) else [data]
    if not blocks:
        raise GridError(f"{path}: blocks: is empty, so the grid has no runs; give at least one block of flags")
    blocks = [normalize_block(block, f"{path}: block {i + 1}") for i, block in enumerate(blocks)]
    common = normalize_block(common, f"{path}: common") if common else {}
    return str(name), blocks, [t for key, value in common.items() for t in flag_tokens(key, value, negatable)]


def check_layout(data, path):
    """Refuse a grid file whose top level is neither a list of blocks, one block, nor a mapping with
    `blocks:`, naming what was found (e.g. a misspelt `block:`)."""
    layout = "a grid file is a list of blocks, one block of flags, or a mapping with blocks: (and name:, common:)"
    if data is None:
        raise GridError(f"{path}: the file is empty; {layout}")
    if not isinstance(data, dict) or "blocks" in data:
        if isinstance(data, dict) and not isinstance(data["blocks"], list):
            raise GridError(f"{path}: blocks: must be a list of blocks, not {type(data['blocks']).__name__}")
        return
    close = [key for key in map(str, data) if difflib.get_close_matches(key.lower(), ["blocks"], cutoff=0.7)]
    nested = [str(key) for key, value in data.items() if isinstance(value, list) and
              any(isinstance(item, dict) for item in value)]
    if close or nested or {"name", "common"} & set(map(str, data)):
        found = close or nested or [key for key in map(str, data) if key in GRID_KEYS]
        raise GridError(f"{path}: no blocks: key (found {', '.join(found)}:); {layout}")


def check_flag_places(labelled_blocks, shared, common, sweep_options, not_in_a_sweep=None):
    """Each flag is given in one place: a block (a [(label, block)]), the grid's common flags, or after
    `--`; a sweep's own option (e.g. --results_path) is never a run flag, and the run flags a sweep
    cannot honour ({flag: why}) are refused."""
    places = [(label, list(block)) for label, block in labelled_blocks]
    places += [("the grid's common:", flag_names(shared)), ("after --", flag_names(common))]
    for place, names in places:
        for name in names:
            if name in sweep_options:
                raise GridError(f"--{name} is an option of the sweep, not a run flag ({place}): give it before --")
            if name in (not_in_a_sweep or {}):
                raise GridError(f"--{name} is not allowed in a sweep ({place}): {not_in_a_sweep[name]}")
    after = flag_names(common)
    repeated = sorted({name for name in after if after.count(name) > 1})
    if repeated:
        raise GridError(f"--{repeated[0]} is given twice after --: give it once")
    for index, (place, names) in enumerate(places[:-1]):
        for other, later in places[max(index + 1, len(labelled_blocks)):]:
            both = [name for name in names if name in later]
            if both:
                raise GridError(f"--{both[0]} is given both in {place} and {other}: give it in one place "
                                f"(one value would silently replace the other)")


def flag_names(tokens):
    """The flag names of an argv (`--seed 3` -> seed)."""
    return [token[2:].split("=", 1)[0] for token in tokens if token.startswith("--") and len(token) > 2]


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
        if key in block:
            raise GridError(f"--grid: {key} is given twice; give its values once, as {key}=V1,V2,...")
        block[key] = True if not _ else [scalar(v) for v in values.split(",")]
    if not block:
        raise GridError("--grid: give at least one KEY=V1,V2,...")
    return block
