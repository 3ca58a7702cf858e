"""Published tables as runs (python -m utils.reproduce): each table's models × buffers with --config best and the
paper's number of seeds, and each cell's verdict against the paper's figure.

The rule: where the paper gives a standard deviation, Welch's t-test of the suite's runs against the paper's mean,
std and n (from summary statistics); the cell agrees when p ≥ 0.05. Where it gives means only, the cell agrees when
the paper's mean lies inside the 95 % confidence interval of the suite's mean (Student's t). Fewer than 2 runs:
no verdict."""
import math
from typing import NamedTuple

from utils.study.statistics import LEVEL, mean_interval

AGREES_AT = 0.05


class Table(NamedTuple):
    """A published table: the dataset it ran on, its models and buffers, its source key in published_results.json,
    the seeds to run and the paper's runs per cell, the official training split's size and image shape (for the
    cost estimate), the data it needs under --data_path (any of these paths), the stand-ins allowed offline, and
    the published figure its cells compare with the suite's Class-IL final average (`accuracy` for MNIST-360, one
    task: utils/reference/published_results.json)."""
    dataset: str
    models: tuple
    buffers: tuple
    source: str
    seeds: int
    paper_runs: int
    train_size: int
    shape: tuple
    data: tuple
    stand_ins: tuple = ()
    figure: str = "class_il"


TABLES = {
    "der-table2-cifar10": Table("seq-cifar10", ("sgd", "er", "der", "derpp"), (200, 500, 5120), "der2020-table2",
                                10, 10, 50000, (3, 32, 32), ("cifar-10-batches-py",)),
    "der-table2-tinyimg": Table("seq-tinyimg", ("sgd", "er", "der", "derpp"), (200, 500), "der2020-table2", 10, 10,
                                100000, (3, 64, 64), ("tiny-imagenet-200",)),
    "der-smnist": Table("seq-mnist", ("sgd", "ewc_on", "si", "lwf", "er", "agem", "icarl", "der", "derpp"),
                        (200, 500, 5120), "der2020-release", 10, 10,
                        60000, (1, 28, 28),
                        ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-images-idx3-ubyte.gz"),
                        ("seq-mnist-5k",)),
    "der-mnist360": Table("mnist-360", ("sgd", "er", "agem_r", "der", "derpp"), (200, 500, 1000), "der2020-release",
                          10, 10, 54051, (1, 28, 28),
                          ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-images-idx3-ubyte.gz"),
                          ("mnist-360-5k",), "accuracy"),
    "xder-table1-cifar100": Table("seq-cifar100", ("sgd", "er", "er_ace", "der", "derpp", "xder"), (500, 2000),
                                  "xder2022-table1", 10, 10, 50000, (3, 32, 32), ("cifar-100-python",)),
}
STAND_IN_CAVEAT = {"seq-mnist-5k": "stand-in: 5,000 MNIST images, not the paper's 60,000 (fewer steps per task): a "
                                   "check of the path, not a reproduction",
                   "mnist-360-5k": "stand-in: MNIST-360 built from 3,600 images of the 5,000-image sample, not the "
                                   "full MNIST's 54,051 (a fifteenth of the steps): a check of the path, not a "
                                   "reproduction"}


def replays(model):
    from models import MODELS

    return MODELS.get(model).NEEDS_BUFFER


def cells(table, entries):
    """[(model, buffer, published entry)] of the table: each model at each buffer (a model without a buffer once),
    with the published figure of the table's source."""
    found = []
    for model in table.models:
        for buffer_size in (table.buffers if replays(model) else (0,)):
            entry = next((e for e in entries if e["source"] == table.source and e["dataset"] == table.dataset
                          and e["model"] == model and (e["buffer_size"] or 0) == buffer_size), None)
            if entry is not None:
                found.append((model, buffer_size, entry))
    return found


class Verdict(NamedTuple):
    agrees: object  # True, False, or None (too few runs)
    p: float = None
    interval: tuple = None

    def text(self):
        if self.agrees is None:
            return "n/a (fewer than 2 runs)"
        word = "agrees" if self.agrees else "differs"
        if self.p is not None:
            return f"{word} (Welch p {self.p:.2g})"
        return f"{word} (paper {'inside' if self.agrees else 'outside'} the {LEVEL:.0%} interval " \
               f"[{self.interval[0]:.2f}, {self.interval[1]:.2f}])"


def verdict(values, paper_mean, paper_std=None, paper_runs=10):
    """The rule of the module's docstring for the suite's `values` against a published cell."""
    from scipy import stats

    if len(values) < 2:
        return Verdict(None)
    if paper_std is not None:
        mean, std = sum(values) / len(values), float(stats.tstd(values))
        p = stats.ttest_ind_from_stats(mean, std, len(values), paper_mean, paper_std, paper_runs,
                                       equal_var=False).pvalue
        p = 1.0 if math.isnan(p) else float(p)
        return Verdict(p >= AGREES_AT, p)
    low, high = mean_interval(values)
    return Verdict(low <= paper_mean <= high, None, (low, high))
