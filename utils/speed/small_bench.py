"""The small models' bench (`python -m utils.bench --small`): on the MLP datasets, every model's suite step against
its bare step (utils/speed/bare_steps.py), one thread, in the second task with the buffer filled by the whole
first task; and the share of the suite's step each piece of bookkeeping takes (the step with that piece off).

The suite step is the training loop's: model.train_step, and the numerics guard's read every 20 steps. Each pair
of steps is timed alternately, so that drifts in the machine's load hit both alike; the figures are medians."""

import torch
from tabulate import tabulate

from models import MODELS
from utils.core.training import PROGRESS_EVERY
from utils.plumbing.cli import parse_args
from utils.plumbing.environment import cpu_name
from utils.plumbing.run import start_clean
from utils.speed.bare_steps import bare_of, without_bookkeeping
from utils.speed.device import cpu_has_native_bf16, timed_pair

DATASETS = ("seq-mnist-5k", "seq-digits")
PIECES = ("diagnostics", "guard", "online", "counts")


def at_the_second_task(model_name, dataset_name, buffer_size, diagnostics_every=1):
    """(model, dataset, the second task's training indices) after the whole first task and its end."""
    replay = ["--buffer_size", str(buffer_size)] if MODELS.get(model_name).NEEDS_BUFFER else []
    args, model_cls, dataset_cls = parse_args(["--model", model_name, "--dataset", dataset_name, "--quiet",
                                               "--device", "cpu", "--threads", "1", "--diagnostics_every",
                                               str(diagnostics_every), *replay])
    start_clean(args)
    dataset = dataset_cls(args)
    dataset.prepare("cpu")
    model = model_cls(dataset.get_backbone(), args, dataset, "cpu")
    model.train()
    images, labels = dataset.splits.train_images, dataset.splits.train_labels
    first = dataset.task_indices(0)
    model.begin_task(0, labels[first])
    for batch in first.split(args.batch_size):
        model.train_step(images[batch], labels[batch])
    model.read_finite()
    model.end_task(0, images[first], labels[first])
    second = dataset.task_indices(1)
    model.begin_task(1, labels[second])
    return model, dataset, second


def batches(dataset, indices, size):
    """An endless cycle of the stream's batches of the task."""
    images, labels = dataset.splits.train_images, dataset.splits.train_labels
    while True:
        for batch in indices.split(size):
            if len(batch) == size:
                yield images[batch], labels[batch]


def measure(model_name, dataset_name, options):
    """{suite, bare, and each piece's seconds saved when it is off} of one model on one dataset."""
    torch.manual_seed(0)
    model, dataset, second = at_the_second_task(model_name, dataset_name, options.buffer_size,
                                                options.diagnostics_every)
    stream = batches(dataset, second, model.args.batch_size)
    count = [0]

    def suite_step(pieces=()):
        with without_bookkeeping(model, pieces):
            model.train_step(*next(stream))
            count[0] += 1
            if count[0] % PROGRESS_EVERY == 0 and "guard" not in pieces:
                model.read_finite()
    bare = bare_of(model, dataset)
    suite, bare_time = timed_pair(suite_step, lambda: bare(*next(stream)), options.warmup, options.steps)
    saved = {}
    for piece in PIECES:
        on, off = timed_pair(suite_step, lambda: suite_step((piece,)), options.warmup, options.steps)
        saved[piece] = on - off
    return {"suite": suite, "bare": bare_time, **saved}


def main(options):
    torch.set_num_threads(1)
    models = options.models or MODELS.names()
    print(f"device: {cpu_name()} ({'native bf16' if cpu_has_native_bf16() else 'no native bf16'}) | torch "
          f"{torch.__version__} | 1 thread | buffer {options.buffer_size} | --diagnostics_every "
          f"{options.diagnostics_every} | second task, {options.steps} paired steps after {options.warmup} | "
          f"share: the suite step's time saved with that piece off")
    for dataset_name in options.datasets:
        rows = []
        for model_name in models:
            result = measure(model_name, dataset_name, options)
            rows.append([model_name, f"{1000 * result['suite']:.3f}", f"{1000 * result['bare']:.3f}",
                         f"{result['bare'] / result['suite']:.2f}",
                         *(f"{100 * result[piece] / result['suite']:.0f} %" for piece in PIECES)])
        print(f"\n{dataset_name}")
        print(tabulate(rows, headers=["model", "suite ms", "bare ms", "bare/suite", *PIECES], tablefmt="github",
                       disable_numparse=True))
