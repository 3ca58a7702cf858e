"""MNIST-360 (datasets/mnist_360.py) against Mammoth's construction written out again (neurips2020
datasets/mnist_360.py and datasets/transforms/rotation.py) and against PIL's rotation, built from small files in
MNIST's raw format and in the 5,000-image sample's format; its evaluation as one task; its reproduction table."""
import gzip
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from datasets import DATASETS
from datasets.mnist_360 import build_stream, evaluation_order, pair_sequence, rotate_like_pil
from tests.helpers import run_main
from tests.test_datasets import write_idx
from utils import reproduce
from utils.core.evaluation import evaluate
from utils.study.reproduction import TABLES


class MammothStream:
    """Mammoth's MNIST360 training side with its loaders replaced by lists: digit j's positions 0..n_j−1 cut into six
    chunks of n_j // 6 + 1, popped from the end, a pair's batch shared by the remaining items with int(round(...)),
    the pair changed when either chunk is spent, and an IncrementalRotation per digit (init (j − 1)·60, increase
    360 / n_j, one iteration per image transformed)."""

    def __init__(self, counts, batch_size):
        self.batch_size, self.train_over = batch_size, False
        self.loaders, self.remaining, self.rotations = [], [], []
        for j in range(9):
            self.loaders.append([])
            self.remaining.append([])
            self.rotations.append({"degrees": (j - 1) * 60, "increase": 360.0 / counts[j], "iteration": 0})
            per_chunk = counts[j] // 6 + 1
            for k in range(6):
                chunk = list(range(counts[j]))[k * per_chunk:(k + 1) * per_chunk]
                self.loaders[-1].append(chunk)
                self.remaining[-1].append(len(chunk))
        self.classes, self.rounds = [0, 1], 0
        self.active = [self.loaders[0].pop(), self.loaders[1].pop()]
        self.active_remaining = [self.remaining[0].pop(), self.remaining[1].pop()]

    def rotate(self, j):
        r = self.rotations[j]
        degrees = (r["iteration"] * r["increase"] + r["degrees"]) % 360
        r["iteration"] += 1
        return degrees

    def next_pair(self):
        self.classes = [(c + 1) % 9 for c in self.classes]
        if self.classes[0] == 0:
            self.rounds += 1
            self.train_over = self.rounds == 3
        if not self.train_over:
            self.active = [self.loaders[c].pop() for c in self.classes]
            self.active_remaining = [self.remaining[c].pop() for c in self.classes]

    def step(self):
        """[(digit, its chunk, angle)] of the next batch, and the pair it came from."""
        r0, r1 = self.active_remaining
        size_0 = min(int(round(r0 / (r0 + r1) * self.batch_size)), r0)
        size_1 = min(self.batch_size - size_0, r1)
        pair = tuple(self.classes)
        items = [(self.classes[i], self.active[i], self.rotate(self.classes[i]))
                 for i, size in enumerate((size_0, size_1)) for _ in range(size)]
        self.active_remaining = [r0 - size_0, r1 - size_1]
        if min(self.active_remaining) <= 0:
            self.next_pair()
        return items, pair


COUNTS = [41, 47, 36, 52, 44, 39, 58, 45, 50]


def shuffled_digits(counts, nines=7, seed=0):
    labels = torch.cat([torch.full((n,), d) for d, n in enumerate(counts + [nines])])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize("batch_size", [1, 4, 10, 16])
def test_the_stream_is_mammoths_pairs_chunks_shares_and_angles(batch_size):
    digits = shuffled_digits(COUNTS)
    indices, angles, lengths = build_stream(digits, batch_size, torch.Generator().manual_seed(3))
    mammoth, steps = MammothStream(COUNTS, batch_size), []
    while not mammoth.train_over:
        steps.append(mammoth.step())
    items = [item for batch, _ in steps for item in batch]
    members = [torch.nonzero(digits == d).flatten().tolist() for d in range(9)]
    assert [digits[i].item() for i in indices] == [digit for digit, _, _ in items]
    assert all(members[digit].index(i) in chunk for i, (digit, chunk, _) in zip(indices, items))
    assert angles == [angle for _, _, angle in items]  # exact: the same float arithmetic
    totals = []  # [pair, images] in streaming order (a pair never follows itself)
    for batch, pair in steps:
        if not totals or totals[-1][0] != pair:
            totals.append([pair, 0])
        totals[-1][1] += len(batch)
    assert [pair for pair, _ in totals] == pair_sequence() and [n for _, n in totals] == lengths
    sizes = [min(batch_size, length - s) for length in lengths for s in range(0, length, batch_size)]
    assert sizes == [len(batch) for batch, _ in steps]  # each pair cut in batches of batch_size: Mammoth's steps


def test_the_first_pair_by_hand():
    """n = 60 images per digit: chunks of 11, the last (used first) holds 5; 6° per image; digit 0 starts at 300°."""
    digits = torch.arange(9).repeat_interleave(60)
    indices, angles, lengths = build_stream(digits, 4, torch.Generator().manual_seed(0))
    first = slice(0, lengths[0])
    assert lengths[0] == 10 and (digits[indices[first]].tolist() == [0, 0, 1, 1, 0, 0, 1, 1, 0, 1])
    assert angles[first] == [300.0, 306.0, 0.0, 6.0, 312.0, 318.0, 12.0, 18.0, 324.0, 24.0]
    assert all(55 <= i % 60 < 60 for i in indices[first])  # the sixth chunk, positions 55..59 of each digit
    assert len(lengths) == 27 and pair_sequence()[8:10] == [(8, 0), (0, 1)]


def test_the_rotation_is_pils_pixel_for_pixel():
    """Mammoth turns each PIL image with torchvision's F.rotate (nearest neighbour, black outside)."""
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (300, 28, 28)).astype(np.uint8)
    angles = [0.0, 90.0, 180.0, 270.0, 300.0, 45.5, 359.999] + [float(a) for a in generator.uniform(0, 360, 293)]
    pil = np.stack([np.array(TF.rotate(Image.fromarray(image, mode="L"), angle)) for image, angle in
                    zip(images, angles)])
    mine = rotate_like_pil(torch.from_numpy(images)[:, None], angles)
    assert mine.dtype == torch.uint8 and np.array_equal(mine[:, 0].numpy(), pil)


def test_the_test_protocol_turns_each_test_image_once_at_even_angles():
    digits = shuffled_digits([5, 3, 4, 6, 2, 7, 3, 4, 5], nines=4, seed=1)
    indices, angles = evaluation_order(digits, torch.Generator().manual_seed(0))
    assert sorted(indices) == torch.nonzero(digits < 9).flatten().tolist()
    by_digit = {}
    for i, angle in zip(indices, angles):
        by_digit.setdefault(digits[i].item(), []).append(angle)
    for digit, got in by_digit.items():
        m = int((digits == digit).sum())
        assert got == [k * 360.0 / m for k in range(m)]


def write_mnist(root, per_digit=40, per_digit_test=4, seed=0):
    """Raw MNIST files with per_digit images of each digit 0-9 (training) and per_digit_test (test)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for prefix, n in (("train", per_digit), ("t10k", per_digit_test)):
        labels = rng.permutation(np.repeat(np.arange(10), n))
        images = rng.integers(0, 256, (len(labels), 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        splits[prefix] = (torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels))
    return splits


def pil_rotated(images, indices, angles):
    return np.stack([np.array(TF.rotate(Image.fromarray(images[i].numpy(), mode="L"), a))
                     for i, a in zip(indices, angles)])


def test_mnist_360_from_mnist_raw_files_is_the_stream_of_digits_0_to_8(tmp_path):
    files = write_mnist(tmp_path / "data")
    dataset = DATASETS.get("mnist-360")(SimpleNamespace(data_path=str(tmp_path / "data"), seed=4, batch_size=10))
    dataset.prepare("cpu")
    (train_x, train_y), (test_x, test_y) = (files[p] for p in ("train", "t10k"))
    keep_train, keep_test = torch.nonzero(train_y < 9).flatten(), torch.nonzero(test_y < 9).flatten()
    generator = torch.Generator().manual_seed(4)
    indices, angles, lengths = build_stream(train_y[keep_train], 10, generator)
    test_indices, test_angles = evaluation_order(test_y[keep_test], generator)
    splits = dataset.splits
    assert torch.equal(splits.train_labels, train_y[keep_train][indices])
    assert np.array_equal(splits.train_images[:, 0].numpy(), pil_rotated(train_x[keep_train], indices, angles))
    assert torch.equal(splits.test_labels, test_y[keep_test][test_indices]) and len(test_indices) == 36
    assert np.array_equal(splits.test_images[:, 0].numpy(), pil_rotated(test_x[keep_test], test_indices, test_angles))
    segments = dataset.stream_order(None)
    assert [len(s) for s in segments] == lengths and torch.equal(torch.cat(segments), torch.arange(len(indices)))
    assert dataset.BOUNDARIES is False and (dataset.N_TASKS, dataset.n_classes) == (1, 10)


def test_mnist_360_trains_from_raw_files(tmp_path):
    write_mnist(tmp_path / "data")
    record = run_main(tmp_path, "--model", "der", "--dataset", "mnist-360", "--buffer_size", "10", "--threads", "1")
    assert record["args"]["batch_size"] == 16 and len(record["class_il"]["matrix"][-1]) == 1
    assert math.isfinite(record["class_il"]["final_avg"])


def test_the_5k_stand_in_reads_digits_0_to_8_of_the_sample(tmp_path, monkeypatch):
    from datasets import base, seq_mnist_5k

    rows = np.zeros((600, 785))
    rows[:, :784] = np.random.default_rng(0).integers(0, 256, (600, 784))
    rows[:, 784] = np.repeat(np.arange(10), 60)
    path = tmp_path / "sample.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, delimiter=",", fmt="%g")
    monkeypatch.setattr(seq_mnist_5k, "sample_path", lambda: str(path))
    monkeypatch.setattr(base, "_BUNDLED_SPLITS", {})
    dataset = DATASETS.get("mnist-360-5k")(SimpleNamespace(seed=0, batch_size=16))
    raw = dataset.loaded_splits()
    assert torch.bincount(raw.train_labels).tolist() == [48] * 9
    assert torch.bincount(raw.test_labels).tolist() == [12] * 9
    dataset.prepare("cpu")
    indices, _, lengths = build_stream(raw.train_labels, 16, torch.Generator().manual_seed(0))
    assert torch.equal(dataset.splits.train_labels, raw.train_labels[indices]) and len(lengths) == 27
    assert "Stand-in for mnist-360" in DATASETS.describe("mnist-360-5k")
    assert dataset.CONFIG_DATASET == "mnist-360" and dataset.provenance()["source"].endswith("mnist_5k.csv.gz")


class Constant(nn.Module):
    """Logits that always pick class 3 (of ten)."""

    def forward(self, x):
        return nn.functional.one_hot(torch.full((len(x),), 3), 10).float()


def test_the_one_task_is_every_test_digit_and_its_class_il_is_correct_over_total():
    dataset = DATASETS.get("mnist-360-5k")(SimpleNamespace(seed=0))
    labels = shuffled_digits([5, 3, 4, 6, 2, 7, 3, 4, 5], nines=0)
    images = torch.zeros(len(labels), 1, 28, 28, dtype=torch.uint8)
    from datasets.base import Splits
    dataset.prepare("cpu", Splits(images.repeat(10, 1, 1, 1), labels.repeat(10), images, labels))
    class_il, task_il, _ = evaluate(Constant(), dataset, 0)
    assert class_il == task_il == [100 * 6 / 39]  # the sixes of 39 test digits: Mammoth's correct / total


def test_the_reproduction_table_lists_its_runs_with_the_stand_in_caveat(tmp_path, capsys):
    argv = ["der-mnist360", "--stand_in", "mnist-360-5k", "--dry_run", "--no_estimate", "--results_path",
            str(tmp_path)]
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert "130 runs" in out and "stand-in: MNIST-360 built from 3,600 images" in out
    assert "--model agem_r --dataset mnist-360-5k --config best --seed 9 --buffer_size 1000" in out


def test_the_reproduction_compares_the_published_accuracy():
    records = [{"args": {"model": "der", "dataset": "mnist-360-5k", "buffer_size": 500, "config": "best", "seed": s},
                "class_il": {"final_avg": v}} for s, v in enumerate((68.0, 70.0))]
    rows, left_out = reproduce.comparison(TABLES["der-mnist360"], "mnist-360-5k", records, 10, (500,))
    der = next(row for row in rows if row[0] == "der")
    assert der[2] == "69.11" and der[3] == "69.00 ± 1.41 (n=2)" and der[4] == "-0.11" and left_out == 0
