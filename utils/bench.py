"""python -m utils.bench: the suite's training step against the bare step on seq-cifar10 shapes (with --small:
every model on the MLP datasets, utils/speed/small_bench.py).

Suite step: index a stream batch out of the uint8 dataset on the device, model.observe (buffer draws,
one kornia call, forwards, masked CE, backward, SGD step, buffer insertion), in the steady state of
the second task with a full buffer. Bare step: the same forward shapes on in-memory float tensors,
plain CE, backward, SGD step. The two alternate step by step and the medians are compared. Every
configuration runs in a fresh process (peak memory is its own). Levers: fp32, cl (channels_last),
bf16 (autocast), each alone and combined, with and without compile; the bf16 rows are skipped on a CPU
without native bf16, and channels_last rows below width 16 on the CPU (where torch's kernels crash). The
summary names the fastest lever (suite step) per model and width.
"""
import argparse
import multiprocessing
import resource

import torch
import torch.nn.functional as F
from tabulate import tabulate

from utils.plumbing.cli import parse_args
from utils.plumbing.environment import cpu_name
from utils.speed.device import (
    CHANNELS_LAST_MIN_WIDTH,
    amp_refusal,
    channels_last_crashes,
    cpu_has_native_bf16,
    resolve_device,
    timed_pair,
)

BATCH = 32
WIDE_MODELS = ("er", "derpp", "xder")  # the models whose bare step the seq-cifar10 bench writes (bare_shapes)
LEVERS = {"fp32": ["--no-channels_last"], "cl": ["--channels_last"], "compile": ["--compile", "--no-channels_last"],
          "compile+cl": ["--compile", "--channels_last"], "bf16": ["--amp", "--no-channels_last"],
          "bf16+cl": ["--amp", "--channels_last"], "compile+bf16": ["--compile", "--amp", "--no-channels_last"],
          "compile+bf16+cl": ["--compile", "--amp", "--channels_last"]}


def build(model_name, width, precision, options):
    from datasets.base import Splits

    argv = ["--model", model_name, "--dataset", "seq-cifar10", "--nf", str(width), "--buffer_size",
            str(options.buffer_size), "--batch_size", str(BATCH), "--minibatch_size",
            str(min(BATCH, options.buffer_size)), "--quiet",
            "--device", options.device, "--data_path", options.data_path or "./data"]
    args, model_cls, dataset_cls = parse_args(argv + LEVERS[precision])
    dataset = dataset_cls(args)
    generator = torch.Generator().manual_seed(0)
    if options.data_path:
        splits = None
    else:
        labels = torch.arange(10).repeat(1000)
        images = torch.randint(0, 256, (len(labels), 3, 32, 32), dtype=torch.uint8, generator=generator)
        splits = Splits(images, labels, images[:100], labels[:100])
    dataset.prepare(args.device, splits)
    model = model_cls(dataset.get_backbone(), args, dataset, args.device)
    past = dataset.task_indices(0)[:options.buffer_size]
    logits = torch.randn(len(past), dataset.n_classes, device=args.device)
    model.buffer.add(dataset.splits.train_images[past], dataset.splits.train_labels[past],
                     None if model_name == "er" else logits)
    model.begin_task(1, dataset.splits.train_labels[dataset.task_indices(1)])
    return model, dataset, args


def bare_shapes(model_name, args):
    """Batch sizes of the forwards the model makes per step."""
    draw = args.minibatch_size
    if model_name == "er":
        return [BATCH + draw]
    if model_name == "derpp":
        return [BATCH, draw, draw]
    views = (min(args.simclr_batch_size, BATCH) + min(args.simclr_batch_size, args.buffer_size)) * args.simclr_num_aug
    return [BATCH, draw, draw, views]


def measure(model_name, width, precision, options):
    """One configuration: seconds per suite step and per bare step, peak memory, buffer bytes per image."""
    torch.manual_seed(0)
    model, dataset, args = build(model_name, width, precision, options)
    if torch.device(args.device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    order = dataset.task_indices(1)
    position = [0]

    def suite_step():
        batch = order[position[0] % (len(order) - BATCH):][:BATCH]
        position[0] += BATCH
        model.observe(dataset.splits.train_images[batch], dataset.splits.train_labels[batch])

    from backbone.precision import PrecisionWrapper
    net = PrecisionWrapper(dataset.get_backbone().to(args.device), args.device, args.amp, args.channels_last,
                           args.compile)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    inputs = [torch.randn(n, 3, 32, 32, device=args.device) for n in bare_shapes(model_name, args)]
    targets = [torch.randint(0, 10, (n,), device=args.device) for n in bare_shapes(model_name, args)]

    def bare_step():
        loss = sum(F.cross_entropy(net(x), y) for x, y in zip(inputs, targets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    suite, bare = timed_pair(suite_step, bare_step, options.warmup, options.steps, args.device)
    if torch.device(args.device).type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    entry = model.buffer.entry_bytes()
    return {"suite": suite, "bare": bare, "peak_mb": peak, "bytes_per_image": entry["images"] + entry["labels"],
            "logit_bytes": entry.get("logits", 0)}


def run_isolated(config, options):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (*config, options))


def skipped(precision, width, device):
    """Why a lever cannot run here, or None."""
    on_cpu = not device.startswith("cuda")
    if "bf16" in precision and amp_refusal("bf16", on_cpu):
        return "this CPU has no native bf16 (bf16 autocast would run about 10x slower than fp32)"
    if "cl" in precision.split("+") and channels_last_crashes(width, on_cpu):
        return f"channels_last below width {CHANNELS_LAST_MIN_WIDTH} crashes torch's CPU kernels"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(WIDE_MODELS),
                        help=f"{', '.join(WIDE_MODELS)} (default); with --small, any model (default: every one)")
    parser.add_argument("--widths", nargs="+", type=int, default=[64, 20])
    parser.add_argument("--precisions", nargs="+", default=list(LEVERS), choices=list(LEVERS),
                        help="cl: channels_last; compile: torch.compile (its warm-up is not timed)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--buffer_size", type=int, default=500)
    parser.add_argument("--data_path", help="a CIFAR-10 folder; default: random uint8 images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--small", action="store_true",
                        help="the MLP datasets' table instead: every model's suite step against its bare step, one "
                             "thread, and the share of each piece of bookkeeping (--models, --steps, --warmup, "
                             "--buffer_size apply; default buffer 200)")
    parser.add_argument("--datasets", nargs="+", default=["seq-mnist-5k", "seq-digits"],
                        help="with --small (default: seq-mnist-5k seq-digits)")
    parser.add_argument("--diagnostics_every", type=int, default=1, help="with --small: the runs' --diagnostics_every")
    options = parser.parse_args(argv)
    if options.small:
        from utils.speed import small_bench

        options.models = None if options.models == parser.get_default("models") else options.models
        options.buffer_size = 200 if options.buffer_size == parser.get_default("buffer_size") else options.buffer_size
        options.steps = 300 if options.steps == parser.get_default("steps") else options.steps
        options.warmup = 30 if options.warmup == parser.get_default("warmup") else options.warmup
        return small_bench.main(options)
    wrong = [name for name in options.models if name not in WIDE_MODELS]
    if wrong:
        parser.error(f"argument --models: {wrong[0]!r} is not allowed without --small: choose from "
                     f"{', '.join(WIDE_MODELS)}")
    device = resolve_device(options.device)
    machine = (torch.cuda.get_device_name(device) if device.startswith("cuda")
               else f"{cpu_name()} ({'native bf16' if cpu_has_native_bf16() else 'no native bf16'})")
    print(f"device: {machine} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
          f"batch {BATCH}, minibatch {min(BATCH, options.buffer_size)}, buffer {options.buffer_size}, "
          f"{options.steps} steps after "
          f"{options.warmup} warm-up")
    rows, fp32_speed = [], {}
    for model_name in options.models:
        for width in options.widths:
            for precision in options.precisions:
                reason = skipped(precision, width, device)
                if reason:
                    print(f"skipped {model_name} width {width} {precision}: {reason}")
                    continue
                result = run_isolated((model_name, width, precision), options)
                speed = BATCH / result["suite"]
                if precision == "fp32":
                    fp32_speed[(model_name, width)] = speed
                base = fp32_speed.get((model_name, width))
                rows.append([model_name, width, precision, f"{speed:.1f}", f"{BATCH / result['bare']:.1f}",
                             f"{result['suite'] / result['bare']:.3f}",
                             "" if precision == "fp32" or not base else f"{speed / base:.2f}×",
                             f"{result['peak_mb']:.0f}", f"{result['bytes_per_image']} + {result['logit_bytes']}"])
    print(tabulate(rows, headers=["model", "width", "precision", "suite img/s", "bare img/s", "suite/bare",
                                  "vs fp32", "peak MB", "buffer B/img (+logits)"], tablefmt="github"))
    for line in fastest(rows):
        print(line)


def fastest(rows):
    """One line per model and width: the lever with the fastest suite step (against fp32), and the eager lever
    --levers auto-bf16 would take in a short run (the fastest suite step without compile) as a share of the
    fastest bare step of any lever."""
    lines = []
    for key in dict.fromkeys((model_name, width) for model_name, width, *_ in rows):
        mine = [row for row in rows if tuple(row[:2]) == key]
        best = max(mine, key=lambda row: float(row[3]))
        fp32 = next((float(row[3]) for row in mine if row[2] == "fp32"), None)
        against = f", {float(best[3]) / fp32:.2f}× fp32" if fp32 else ""
        line = f"fastest for {key[0]} at width {key[1]}: {best[2]} ({best[3]} img/s{against})"
        eager = [row for row in mine if "compile" not in row[2]]
        if eager:
            auto, bare = max(eager, key=lambda row: float(row[3])), max(mine, key=lambda row: float(row[4]))
            line += (f"; --levers auto-bf16 (short run) takes {auto[2]}: {float(auto[3]) / float(bare[4]):.2f} of "
                     f"the fastest bare step ({bare[2]}, {bare[4]} img/s)")
        lines.append(line)
    return lines


if __name__ == "__main__":
    main()
