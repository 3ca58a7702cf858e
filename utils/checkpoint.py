"""Atomic checkpoints (temp file + fsync + rename, the previous one kept) and exact resume."""
import glob
import os
import random
import warnings

import numpy as np
import torch

PATTERN = "checkpoint-{:06d}.pt"
KEPT = 2
COSMETIC_FLAGS = {"non_verbose", "results_path", "checkpoint_dir", "resume", "data_path", "device"}


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is the one line users see."""


def rng_states():
    """Every RNG state, as tensors and plain lists so that torch.load(weights_only=True) reads it."""
    version, mt_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(mt_state), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states):
    version, mt_state, gauss = states["python"]
    random.setstate((version, tuple(mt_state), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_paths(directory):
    return sorted(glob.glob(os.path.join(directory, PATTERN.replace("{:06d}", "[0-9]" * 6))))


def save_checkpoint(directory, state):
    """Write the next checkpoint atomically, then drop all but the newest KEPT ones."""
    os.makedirs(directory, exist_ok=True)
    existing = checkpoint_paths(directory)
    number = int(os.path.basename(existing[-1])[11:17]) + 1 if existing else 0
    path = os.path.join(directory, PATTERN.format(number))
    temp = f"{path}.tmp"
    with open(temp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    _fsync_dir(directory)
    for old in checkpoint_paths(directory)[:-KEPT]:
        os.remove(old)
    return path


def load_latest(directory):
    """(state, path) of the newest checkpoint that loads; a damaged one is reported and skipped."""
    for path in reversed(checkpoint_paths(directory)):
        try:
            return torch.load(path, map_location="cpu", weights_only=True), path
        except Exception as error:  # a truncated zip, a refused global, ...: every failure means "try older"
            warnings.warn(f"{path}: unusable checkpoint ({type(error).__name__}: {str(error).splitlines()[0]}); "
                          f"trying the previous one")
    raise CheckpointError(f"no usable checkpoint in {directory}")


def check_same_run(saved_args, args):
    """Refuse to resume with flags that change the experiment (cosmetic ones may differ)."""
    current = {k: v for k, v in args.items() if k not in COSMETIC_FLAGS}
    saved = {k: v for k, v in saved_args.items() if k not in COSMETIC_FLAGS}
    changed = sorted(k for k in set(current) | set(saved) if current.get(k) != saved.get(k))
    if changed:
        details = ", ".join(f"--{k} {saved.get(k)!r} (now {current.get(k)!r})" for k in changed)
        raise CheckpointError(f"the checkpoint was written by a different run: {details}")
