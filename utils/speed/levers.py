"""--levers auto: the fastest speed levers (--amp, --channels_last, --compile) for this run on this machine,
chosen by timing the model's own training step before the run starts.

Each candidate builds its own copy of the model, fills its buffer with real steps of the first task and times
real steps of the second; all of it runs inside a fork of the random streams, so the run itself draws exactly
what it would have drawn with the chosen levers given by hand. `auto` keeps fp32 (memory format and compile
only); `auto-bf16` also tries bf16 autocast where the device runs it natively (never on a CPU without
AVX-512 BF16 or AMX). Compile is tried only when the run is long enough for it to pay: when the run's steps at
the fastest eager lever take over COMPILE_AFTER_S, and it is chosen only if its saving over the run's steps
exceeds the compilation time measured.
"""
import math
import statistics
import time

import torch

from utils.speed import SPEED_FLAGS
from utils.speed.device import amp_refusal, channels_last_crashes, synchronize

WARMUP, TIMED = 2, 5
COMPILE_AFTER_S = 600


def eager_candidates(args, dataset_cls):
    """{name: lever values} of the eager levers this run may use here."""
    on_cpu = not args.device.startswith("cuda")
    formats = [False]
    if dataset_cls.CONVOLUTIONAL and not channels_last_crashes(getattr(args, "nf", None), on_cpu):
        formats.append(True)
    precisions = [None]
    if args.levers == "auto-bf16" and amp_refusal("bf16", on_cpu) is None:
        precisions.append("bf16")
    levers = ({"amp": amp, "channels_last": cl, "compile": False} for amp in precisions for cl in formats)
    return {lever_name(lever): lever for lever in levers}


def lever_name(lever):
    """fp32, cl, bf16, bf16+cl, each with compile+ in front when compiled (the bench's names)."""
    parts = ["compile" if lever["compile"] else None, lever["amp"], "cl" if lever["channels_last"] else None]
    return "+".join(part for part in parts if part) or "fp32"


def time_steps(args, lever, model_cls, dataset):
    """(median seconds of a training step in the second task, the trial's other seconds) with `lever`, on a
    fresh copy of the model whose buffer real first-task steps (and its task end) filled. The other seconds
    are the trial's whole time less its steps at that median: building, warming up and, for compile, the
    compilation of every shape it met."""
    began = time.perf_counter()
    model = model_cls(dataset.get_backbone(), args.replaced(**lever), dataset, args.device)
    model.train()
    images, labels = dataset.splits.train_images, dataset.splits.train_labels

    def steps(task, count):
        indices = dataset.task_indices(task)
        times = []
        for step in range(count):
            start = step * args.batch_size % max(1, len(indices) - args.batch_size)
            batch = indices[start:start + args.batch_size]
            synchronize(args.device)
            step_began = time.perf_counter()
            model.train_step(images[batch], labels[batch])
            synchronize(args.device)
            times.append(time.perf_counter() - step_began)
        return times

    first = dataset.task_indices(0)
    model.begin_task(0, labels[first])
    filling = 0
    if model.buffer is not None:
        filling = len(steps(0, math.ceil(model.buffer.capacity / args.batch_size)))
        model.end_task(0, images[first], labels[first])  # X-DER and SS-IL fill their buffer here
    task = min(1, dataset.N_TASKS - 1)
    model.begin_task(task, labels[dataset.task_indices(task)])
    times = steps(task, WARMUP + TIMED)
    median = statistics.median(times[WARMUP:])
    return median, time.perf_counter() - began - median * (filling + WARMUP + TIMED)


def run_steps(args, model_cls, dataset):
    """Training steps of the whole run: each task trains on its own data, or on every task seen so far for a
    model that does (joint)."""
    per_task = len(dataset.splits.train_labels) / dataset.N_TASKS
    tasks = [(t + 1 if model_cls.TRAINS_ON_SEEN_TASKS else 1) for t in range(dataset.N_TASKS)]
    return args.n_epochs * sum(math.ceil(n * per_task / args.batch_size) for n in tasks)


def usable_here(args):
    """The levers of args this device can run (a checkpoint's choice resumed elsewhere), by the rules the
    command line is checked with, and the names of those dropped."""
    on_cpu = not args.device.startswith("cuda")
    levers, dropped = {name: getattr(args, name) for name in SPEED_FLAGS}, []
    if amp_refusal(args.amp, on_cpu):
        levers["amp"] = None
        dropped.append("amp")
    if args.channels_last and channels_last_crashes(getattr(args, "nf", None), on_cpu):
        levers["channels_last"] = False
        dropped.append("channels_last")
    return levers, dropped


def choose_levers(args, model_cls, dataset):
    """The fastest lever's --amp, --channels_last and --compile values, and the record of the choice: its name,
    each candidate's median step (ms), the run's steps and, where compile was tried and could not build, why."""
    levers = eager_candidates(args, type(dataset))
    steps = run_steps(args, model_cls, dataset)
    devices = [torch.device(args.device)] if args.device.startswith("cuda") else []
    compile_error = None
    with torch.random.fork_rng(devices=devices):
        timings = {name: time_steps(args, lever, model_cls, dataset) for name, lever in levers.items()}
        choice = min(timings, key=lambda name: timings[name][0])
        if steps * timings[choice][0] > COMPILE_AFTER_S:
            compiled = {**levers[choice], "compile": True}
            name = lever_name(compiled)
            try:
                timings[name] = time_steps(args, compiled, model_cls, dataset)
            except Exception as error:  # torch.compile could not build here (no compiler, ...): stay eager
                compile_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            else:
                levers[name] = compiled
                saved = steps * (timings[choice][0] - timings[name][0])
                if saved > timings[name][1] - timings[choice][1]:
                    choice = name
    levers_record = {"choice": choice, "step_ms": {n: round(1000 * median, 3) for n, (median, _) in timings.items()},
                     "run_steps": steps}
    if compile_error:
        levers_record["compile_error"] = compile_error
    return levers[choice], levers_record
