"""CIFAR-100 and TinyImageNet loaders on small files in the official layouts; the lr schedule."""
import os
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import DATASETS
from datasets.base import DataError, DataWarning
from tests.helpers import all_finite, run_main
from utils.core.training import task_scheduler


def write_cifar100(root, n_train=200, n_test=100):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        with open(folder / name, "wb") as f:
            pickle.dump({"filenames": [f"{i}.png" for i in range(n)], "batch_label": name,
                         "fine_labels": [i % 100 for i in range(n)], "coarse_labels": [i % 20 for i in range(n)],
                         "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)]}, f)


def test_cifar100_reads_fine_labels_and_trains(tmp_path):
    write_cifar100(tmp_path / "data")
    dataset = DATASETS.get("seq-cifar100")(SimpleNamespace(data_path=str(tmp_path / "data"), nf=8))
    with pytest.warns(DataWarning):
        splits = dataset.load_splits()
    assert splits.train_images.shape == (200, 3, 32, 32) and splits.train_labels[:3].tolist() == [0, 1, 2]
    assert dataset.N_TASKS == 10 and dataset.LR_MILESTONES == (35, 45)
    with pytest.warns(DataWarning):
        record = run_main(tmp_path, "--model", "xder", "--dataset", "seq-cifar100", "--nf", "8",
                          "--buffer_size", "100", "--n_epochs", "1", "--simclr_batch_size", "8")
    assert len(record["class_il"]["matrix"]) == 10 and all_finite(record["task_il"])


WNIDS = ["n02", "n01", "n03"]


def write_tinyimg(root, per_class=4, size=64):
    """The official layout: wnids.txt, train/<wnid>/images/<wnid>_<i>.JPEG, val/images + annotations."""
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    colours = {}
    for k, wnid in enumerate(WNIDS):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        colours[wnid] = (k * 100, 50, 200 - k * 60)
        for i in range(per_class):
            Image.new("RGB", (size, size), colours[wnid]).save(images / f"{wnid}_{i}.JPEG", quality=95)
    lines = []
    for i, wnid in enumerate(WNIDS * 2):
        Image.new("RGB", (size, size), colours[wnid]).save(folder / "val" / "images" / f"val_{i}.JPEG", quality=95)
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder, colours


def tinyimg(path):
    return DATASETS.get("seq-tinyimg")(SimpleNamespace(data_path=str(path), nf=8))


def test_tinyimg_parses_the_official_layout_and_caches(tmp_path):
    folder, colours = write_tinyimg(tmp_path)
    splits = tinyimg(tmp_path).load_splits()
    assert splits.train_images.shape == (12, 3, 64, 64) and splits.train_images.dtype == torch.uint8
    assert splits.test_images.shape == (6, 3, 64, 64)
    assert splits.train_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # sorted wnids: n01, n02, n03
    assert splits.test_labels.tolist() == [1, 0, 2, 1, 0, 2]
    pixel = splits.train_images[0, :, 10, 10].tolist()
    assert all(abs(a - b) <= 3 for a, b in zip(pixel, colours["n01"]))
    assert sorted(p for p in os.listdir(folder) if p.startswith("cache_")) == [
        "cache_test_images.npy", "cache_test_labels.npy", "cache_train_images.npy", "cache_train_labels.npy"]
    for wnid in WNIDS:
        for name in os.listdir(folder / "train" / wnid / "images"):
            os.remove(folder / "train" / wnid / "images" / name)
    assert torch.equal(tinyimg(tmp_path).load_splits().train_images, splits.train_images)


def test_tinyimg_broken_layout_is_named(tmp_path):
    folder, _ = write_tinyimg(tmp_path)
    os.remove(folder / "val" / "val_annotations.txt")
    with pytest.raises(DataError, match="val_annotations.txt"):
        tinyimg(tmp_path).load_splits()


def test_tinyimg_corrupt_jpeg_is_named(tmp_path):
    folder, _ = write_tinyimg(tmp_path)
    (folder / "train" / "n01" / "images" / "n01_2.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="n01_2.JPEG"):
        tinyimg(tmp_path).load_splits()


def test_schedule_restarts_each_task_and_divides_at_milestones():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    args = SimpleNamespace(lr=0.03, lr_milestones=[2, 3], lr_gamma=0.1)
    for _ in range(2):
        scheduler = task_scheduler(optimizer, args)
        rates = []
        for _ in range(4):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert rates == pytest.approx([0.03, 0.03, 0.003, 0.0003])
    assert task_scheduler(optimizer, SimpleNamespace(lr=0.1, lr_milestones=[])) is None
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_schedule_uses_lr_gamma():
    """X-DER's seq-cifar100 schedule: factor 0.2 at epochs 35 and 45 (here 1 and 2)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = task_scheduler(optimizer, SimpleNamespace(lr=0.03, lr_milestones=[1, 2], lr_gamma=0.2))
    rates = []
    for _ in range(3):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.03, 0.006, 0.0012])
