"""Atomic checkpoints (temp file + fsync + rename, the previous one kept), exact resume, and the
marker that says a finished run's result was written (so a relaunch appends nothing)."""
import glob
import json
import os
import random
import warnings

import numpy as np
import torch

from utils.plumbing.files import write_atomically
from utils.plumbing.identity import MACHINE_FLAGS, flags_key

PATTERN = "checkpoint-{:06d}.pt"
KEPT = 2
COMPLETE = "complete.json"


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


def checkpoint_paths(directory):
    return sorted(glob.glob(os.path.join(directory, PATTERN.replace("{:06d}", "[0-9]" * 6))))


def save_checkpoint(directory, state):
    """Write the next checkpoint atomically, then drop all but the newest KEPT ones."""
    os.makedirs(directory, exist_ok=True)
    existing = checkpoint_paths(directory)
    number = int(os.path.basename(existing[-1])[11:17]) + 1 if existing else 0
    path = os.path.join(directory, PATTERN.format(number))
    write_atomically(path, lambda f: torch.save(state, f))
    for old in checkpoint_paths(directory)[:-KEPT]:
        os.remove(old)
    return path


def load_latest(directory):
    """(state, path) of the newest checkpoint that loads; a damaged one is reported and skipped.
    (None, None) when the folder holds no checkpoint yet."""
    paths = checkpoint_paths(directory)
    if not paths:
        return None, None
    for path in reversed(paths):
        try:
            return torch.load(path, map_location="cpu", weights_only=True), path
        except Exception as error:  # a truncated zip, a refused global, ...: every failure means "try older"
            warnings.warn(f"{path}: unusable checkpoint ({type(error).__name__}: {str(error).splitlines()[0]}); "
                          f"trying the previous one")
    raise CheckpointError(f"no usable checkpoint in {directory}")


def check_same_run(saved_args, args):
    """Refuse to resume with flags that change the experiment: the run keys compared, less the device (cosmetic
    flags, a later flag at its neutral default and the levers --levers auto chose may differ)."""
    current, saved = ({k: v for k, v in flags_key(flags).items() if k not in MACHINE_FLAGS}
                      for flags in (args, saved_args))  # compared as run keys are
    changed = sorted(k for k in set(current) | set(saved) if current.get(k) != saved.get(k))
    if changed:
        details = ", ".join(f"--{k} {saved.get(k)!r} (now {current.get(k)!r})" for k in changed)
        raise CheckpointError(f"the checkpoint was written by a different run: {details}")


def mark_complete(directory, results_file, run_id):
    """Record in the run's checkpoint folder that its result line was written, and where."""
    os.makedirs(directory, exist_ok=True)
    marker = json.dumps({"results_file": results_file, "run_id": run_id}).encode()
    write_atomically(os.path.join(directory, COMPLETE), lambda f: f.write(marker))


def read_complete(directory):
    """The marker written by mark_complete, or None."""
    try:
        with open(os.path.join(directory, COMPLETE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def describe_position(position, n_tasks, n_epochs):
    """Where a checkpoint continues (its utils.core.loop_state.LoopPosition), in words."""
    task = position.task
    if task >= n_tasks:
        return "after the last task (training finished)"
    if not position.task_started:
        return f"at the start of task {task + 1}/{n_tasks}"
    if position.epoch >= n_epochs:
        return f"at the end of task {task + 1}/{n_tasks} (its {n_epochs} epochs done)"
    passes = f" and {position.repeat} --passes step(s) on the next batch" if position.repeat else ""
    return (f"at task {task + 1}/{n_tasks}, epoch {position.epoch + 1}/{n_epochs}, "
            f"after step {position.step} of that epoch{passes}")
