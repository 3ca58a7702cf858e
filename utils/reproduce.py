"""python -m utils.reproduce TABLE: run a published table as its paper did and set the suite's figures beside the
paper's, cell by cell, with a verdict (the rule: utils/study/reproduction.py; README, "Reproducing a table").

The table's models × buffers run with --config best over the paper's number of seeds on --data_path, as one sweep
(it resumes, runs in parallel and on Ray as any sweep does); --dry_run lists the runs and estimates their cost on
this machine from a few timed training steps of each cell. Offline, --stand_in seq-mnist-5k runs the S-MNIST table
on the 5,000-image sample, and every line says it is a check of the path, not a reproduction."""
import argparse
import math
import os
import sys
import time

from utils.plumbing.console import count
from utils.plumbing.parser import ArgumentParser, did_you_mean, positive_int

PROG = "python -m utils.reproduce"
TIMED_STEPS = 3


def build_parser(tables):
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("table", help=f"one of: {', '.join(tables)}")
    parser.add_argument("--data_path", default="./data", help="where the table's dataset is (default: ./data)")
    parser.add_argument("--stand_in", help="run on this dataset instead, where the table allows one (der-smnist: "
                                           "seq-mnist-5k): a check of the path, not a reproduction")
    parser.add_argument("--seeds", type=positive_int, help="seeds per cell (default: the paper's, 10)")
    parser.add_argument("--buffers", nargs="+", type=int, help="only these buffer sizes (default: the table's)")
    parser.add_argument("--models", nargs="+", help="only these of the table's models (default: all of them)")
    parser.add_argument("--results_path", help="folder of the sweep (default: results/reproduce/TABLE)")
    parser.add_argument("--workers", type=positive_int, help="parallel runs (as utils.sweep)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="(default: local)")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT")
    parser.add_argument("--dry_run", action="store_true", help="list the runs and estimate their cost; run nothing")
    parser.add_argument("--no_estimate", action="store_true", help="with --dry_run: skip the timed steps")
    return parser


def check(parser, options, tables):
    """The table, its stand-in and its data, refused with one line each."""
    if options.table not in tables:
        parser.error(f"argument table: {options.table!r} is not a published table: choose from {', '.join(tables)}"
                     f"{did_you_mean(options.table, tables)}")
    table = tables[options.table]
    if options.stand_in and options.stand_in not in table.stand_ins:
        allowed = f"choose from {', '.join(table.stand_ins)}" if table.stand_ins else "it has none"
        parser.error(f"argument --stand_in: {options.stand_in!r} is not allowed for {options.table}: {allowed}")
    if options.buffers and not set(options.buffers) <= set(table.buffers):
        parser.error(f"argument --buffers: {options.table} has buffers {', '.join(map(str, table.buffers))}")
    if options.models:
        if not set(options.models) <= set(table.models):
            parser.error(f"argument --models: {options.table} has models {', '.join(table.models)}")
        table = table._replace(models=tuple(m for m in table.models if m in options.models))
    if not options.stand_in and not options.dry_run and not any(
            os.path.exists(os.path.join(options.data_path, path)) for path in table.data):
        stand_in = f"; offline, --stand_in {table.stand_ins[0]} runs it on a stand-in" if table.stand_ins else ""
        parser.error(f"argument --data_path: {options.table} runs on {table.dataset}, whose data is not in "
                     f"{options.data_path} ({table.data[0]}): python main.py --model sgd --dataset {table.dataset} "
                     f"--data_path {options.data_path} downloads it{stand_in}")
    return table


def replays(model):
    from utils.study.reproduction import replays as needs_buffer

    return needs_buffer(model)


def grid_blocks(table, dataset, seeds, buffers):
    """One block per model: the table's buffers (none for a model without a buffer), --config best, the seeds."""
    blocks = []
    for model in table.models:
        block = {"model": model, "dataset": dataset, "config": "best", "seed": f"0-{seeds - 1}"}
        if replays(model):
            block["buffer_size"] = list(buffers)
        blocks.append(block)
    return blocks


def step_seconds(table, dataset, model, buffer_size, train_size):
    """Median seconds of a training step of the cell's configuration on random images of the table's shape, in the
    second task (a dataset of one task: in it) with a full buffer, on this machine (one thread)."""
    import statistics

    import torch

    from datasets.base import Splits
    from utils.plumbing.cli import parse_args

    flags = ["--model", model, "--dataset", dataset, "--config", "best", "--quiet", "--device", "cpu"]
    args, model_cls, dataset_cls = parse_args(flags + (["--buffer_size", str(buffer_size)] if buffer_size else []))
    data = dataset_cls(args)
    n_classes = data.n_classes
    per_class = max(2 * args.batch_size, math.ceil((buffer_size or 0) / n_classes) + args.batch_size)
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n_classes).repeat(per_class)
    images = torch.randint(0, 256, (len(labels), *table.shape), dtype=torch.uint8, generator=generator)
    data.prepare("cpu", Splits(images, labels, images[:n_classes], labels[:n_classes]))
    model_obj = model_cls(data.get_backbone(), args, data, "cpu")
    model_obj.train()
    if model_obj.buffer is not None:  # full, as in a later task (logits for every model: those without ignore them)
        past = data.task_indices(0)[:buffer_size]
        model_obj.buffer.add(data.splits.train_images[past], data.splits.train_labels[past],
                             torch.randn(len(past), n_classes))
    later = min(1, data.N_TASKS - 1)
    current = data.task_indices(later)
    model_obj.begin_task(later, data.splits.train_labels[current])
    times = []
    for step in range(TIMED_STEPS + 1):
        batch = current[step * args.batch_size:(step + 1) * args.batch_size]
        began = time.perf_counter()
        model_obj.train_step(data.splits.train_images[batch], data.splits.train_labels[batch])
        times.append(time.perf_counter() - began)
    steps = args.n_epochs * math.ceil(train_size / data.N_TASKS / args.batch_size) * data.N_TASKS
    return statistics.median(times[1:]), steps


def estimate(table, dataset, buffers, seeds, train_size):
    """Lines of the cost estimate: each cell's measured step, its steps per run (`train_size` training images) and
    hours for its seeds."""
    import torch

    from utils.plumbing.environment import cpu_name
    from utils.speed.device import set_threads

    set_threads(1)
    lines, total = [], 0.0
    for model in table.models:
        for buffer_size in (buffers if replays(model) else (0,)):
            seconds, steps = step_seconds(table, dataset, model, buffer_size, train_size)
            total += seconds * steps * seeds
            lines.append(f"  {model} buffer {buffer_size or '–'}: {1000 * seconds:.1f} ms per step × {steps:,} steps "
                         f"× {seeds} seeds = {duration(seconds * steps * seeds)}")
    lines.append(f"about {duration(total)} of training in all on {cpu_name()}, one thread per run (torch "
                 f"{torch.__version__}; steps timed on random images of the table's shape, evaluation not counted; "
                 f"{dataset}: {train_size:,} training images)")
    return lines


def duration(seconds):
    """12 s, 3.4 min, 2.1 h or 3.2 days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def training_size(table, dataset):
    """The training images a run sees: the table's official count, or a bundled stand-in's own."""
    from types import SimpleNamespace

    from datasets import DATASETS

    cls = DATASETS.get(dataset)
    return len(cls(SimpleNamespace()).loaded_splits().train_labels) if cls.BUNDLED else table.train_size


def comparison(table, dataset, records, seeds, buffers):
    """(rows, runs of another protocol left out): each published cell, the paper's figure, the suite's runs of its
    --config best configuration on `dataset`, the difference and the verdict."""
    from utils.reference.figures import load_published
    from utils.study.reproduction import cells, verdict

    entries, _ = load_published()
    rows, used = [], set()
    for model, buffer_size, entry in cells(table, entries):
        if buffer_size and buffer_size not in buffers:
            continue
        mine = [r for r in records if r["args"]["model"] == model and r["args"]["dataset"] == dataset
                and (r["args"].get("buffer_size") or 0) == buffer_size and r["args"].get("config") == "best"
                and r["args"]["seed"] < seeds]
        used.update(id(r) for r in mine)
        values = [r["class_il"]["final_avg"] for r in mine]
        paper, std = entry.get(table.figure), entry.get(f"{table.figure}_std")
        if not values:
            rows.append([model, buffer_size or "–", figure(paper, std), "not run", "", ""])
            continue
        mean = sum(values) / len(values)
        spread = (f" ± {math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)):.2f}"
                  if len(values) > 1 else "")
        rows.append([model, buffer_size or "–", figure(paper, std), f"{mean:.2f}{spread} (n={len(values)})",
                     f"{mean - paper:+.2f}", verdict(values, paper, std, table.paper_runs).text()])
    return rows, len(records) - len(used)


def figure(mean, std):
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def main(argv=None):
    from tabulate import tabulate

    from utils import sweep
    from utils.plumbing.files import write_atomically
    from utils.plumbing.results_file import read_lines
    from utils.study.reproduction import STAND_IN_CAVEAT, TABLES
    from utils.study.runs import unique_runs

    parser = build_parser(TABLES)
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    table = check(parser, options, TABLES)
    dataset = options.stand_in or table.dataset
    seeds, buffers = options.seeds or table.seeds, options.buffers or table.buffers
    folder = options.results_path or os.path.join("results", "reproduce",
                                                  options.table + (f"-{dataset}" if options.stand_in else ""))
    caveat = STAND_IN_CAVEAT.get(options.stand_in)
    if caveat:
        print(f"{options.table} on {dataset}: {caveat}")
    import yaml

    os.makedirs(folder, exist_ok=True)
    grid = os.path.join(folder, "grid.yaml")
    text = yaml.safe_dump({"name": f"reproduce-{options.table}", "common": {"data_path": options.data_path},
                           "blocks": grid_blocks(table, dataset, seeds, buffers)}, sort_keys=False)
    write_atomically(grid, lambda f: f.write(text.encode("utf-8")))
    argv = [grid, "--results_path", folder] + (["--workers", str(options.workers)] if options.workers else [])
    argv += ["--backend", options.backend] + (["--address", options.address] if options.address else [])
    if options.dry_run:
        status = sweep.main(argv + ["--dry_run"])
        if status == 0 and not options.no_estimate:
            lines = estimate(table, dataset, buffers, seeds, training_size(table, dataset))
            print("\n".join(["cost estimate:"] + lines))
        return status
    status = sweep.main(argv)
    results = os.path.join(folder, "results.jsonl")
    lines, _ = read_lines([results]) if os.path.isfile(results) else ([], [])
    records = [line.record for line in unique_runs(lines)[0]]
    rows, left_out = comparison(table, dataset, records, seeds, buffers)
    published = "Class-IL" if table.figure == "class_il" else table.figure
    headers = ["model", "buffer", f"paper {published}", "suite Class-IL", "difference", "verdict"]
    if caveat:
        headers.append("caveat")
        rows = [row + [caveat] for row in rows]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    if left_out:
        print(f"{count(left_out, 'run')} of the results file left out: another protocol (dataset, config or seed "
              f"outside this table's)")
    return status


if __name__ == "__main__":
    from utils.plumbing.console import run_command

    sys.exit(run_command(main, PROG, on_interrupt="finished runs are on disk; run the same command to resume"))
