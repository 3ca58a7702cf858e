"""What identifies a run: its key (every resolved flag that changes the result), the key's hash,
the default checkpoint folder named after it, and a fresh id and start time for each launch."""
import datetime
import hashlib
import json
import os
import uuid

from utils.plumbing.record import json_safe
from utils.speed import SPEED_FLAGS

PATH_FLAGS = ("data_path", "results_path", "checkpoint_dir", "log_dir")
COSMETIC_FLAGS = frozenset(PATH_FLAGS + ("quiet", "resume", "threads", "log_every", "rerun"))
MACHINE_FLAGS = frozenset({"device"})  # a checkpoint may continue on another device
# Flags added after results existed, left out of the key at the default that reproduces the runs before them,
# so that those runs keep their keys.
LATER_FLAG_DEFAULTS = {"levers": "fixed", "diagnostics_every": 1, "validation": 0.0, "validation_seed": 0,
                       "buffer_policy": "reservoir", "stream": "tasks", "blurry_disjoint": 50.0, "blurry_mix": 10.0,
                       "transition_width": 0.2, "passes": 1, "scope_window": 10}
# Values that are no flag but sat in a run's args before they moved to the results line's launch fields (the
# --config source's citation): never in the key; a line written with one has a stale stored key_hash, so its key
# is recomputed from its args (utils.plumbing.results_file.keys_of).
NOT_FLAGS = ("config_source",)


def flags_key(flags):
    """Every flag of a resolved-flags dict (a results line's `args`) but paths, display and thread count, with
    the device reduced to its kind (cuda:1 is cuda), later flags at their neutral default left out, the path of a
    picked file given to --config (the flags hold what it set) and, under --levers auto, the levers it chose; values
    that are no flag never count: equal keys are the same experiment."""
    left_out = COSMETIC_FLAGS.union(NOT_FLAGS)
    key = {name: value for name, value in sorted(flags.items()) if name not in left_out}
    for name, default in LATER_FLAG_DEFAULTS.items():
        if key.get(name) == default:
            del key[name]
    if key.get("config") not in (None, "best"):  # a tuning's picked file: its values are in the flags, not its path
        del key["config"]
    if "levers" in key:
        for name in SPEED_FLAGS:  # measured at run time under --levers auto: not in the key
            key.pop(name, None)
    if "device" in key:
        key["device"] = str(key["device"]).split(":")[0]
    return key


def run_key(args):
    return flags_key(json_safe(vars(args)))


def key_hash(key, length=10):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:length]


def run_key_hash(args):
    """The `key_hash` of a results line: the hash of the run's key."""
    return key_hash(run_key(args))


def default_checkpoint_dir(args, root="checkpoints"):
    """checkpoints/<model>-<dataset>-<mask>-seed<N>-<hash of every flag that changes the run>."""
    key = {name: value for name, value in run_key(args).items() if name not in MACHINE_FLAGS}
    return os.path.join(root, f"{args.model}-{args.dataset}-{args.mask}-seed{args.seed}-{key_hash(key)}")


def new_run_id():
    return uuid.uuid4().hex[:12]


def utc_now():
    """ISO 8601 in UTC to the second, e.g. 2026-11-24T19:18:08Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
