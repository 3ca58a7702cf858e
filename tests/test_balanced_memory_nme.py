"""The class-balanced memory (--buffer_policy balanced, CBRS) and the nearest-mean-of-exemplars classifier
(--calibration nme): each against a direct computation, their refusals, and a run of each that resumes."""
import pytest
import torch

from tests.helpers import interrupt_then_resume, read_records, run_cli, run_main
from utils.core.balanced_buffer import BalancedBuffer
from utils.core.nme import class_means, nme_logits


def stream(counts, seed=0):
    """Labels of a stream with counts[c] items of class c, class after class (as tasks give them)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return torch.arange(len(labels))[:, None], labels


def fill(buffer, images, labels, batch):
    for start in range(0, len(labels), batch):
        buffer.add(images[start:start + batch], labels[start:start + batch])


def cbrs_by_hand(labels, capacity, n_classes):
    """CBRS (Chrysakis & Moens 2020, Algorithm 1) one item at a time with Python lists, drawing the same random
    numbers as the buffer (a uniform score per slot, the largest candidate's wins; then the keep draw)."""
    held, stored, seen, full = [], [0] * n_classes, [0] * n_classes, [False] * n_classes
    for y in labels.tolist():
        seen[y] += 1
        if len(held) < capacity:
            held.append(y)
            stored[y] += 1
        else:
            most = max(stored)
            candidates = [(h == y) if full[y] else (stored[h] == most) for h in held]
            scores = torch.rand(capacity).tolist()
            slot = max((s, -i) for i, (s, c) in enumerate(zip(scores, candidates)) if c)[1] * -1
            keep = torch.rand(1).item() <= stored[y] / seen[y]
            if not full[y] or keep:
                stored[held[slot]] -= 1
                stored[y] += 1
                held[slot] = y
        most = max(stored)
        full = [f or s == most for f, s in zip(full, stored)]
    return held


@pytest.mark.parametrize("counts", [(300, 40, 100), (50, 50, 50, 50, 500), (7, 200, 90)])
def test_the_balanced_memory_is_cbrs_item_by_item(counts):
    images, labels = stream(counts)
    torch.manual_seed(3)
    buffer = BalancedBuffer(60, "cpu", len(counts))
    fill(buffer, images, labels, batch=10)
    torch.manual_seed(3)
    assert buffer.labels.tolist() == cbrs_by_hand(labels, 60, len(counts))
    assert buffer.stored.tolist() == torch.bincount(buffer.labels, minlength=len(counts)).tolist()


def test_the_balanced_memory_keeps_equal_counts_where_reservoir_does_not():
    images, labels = stream((400, 40, 100))
    torch.manual_seed(0)
    buffer = BalancedBuffer(60, "cpu", 3)
    fill(buffer, images, labels, batch=10)
    assert torch.bincount(buffer.labels, minlength=3).tolist() == [20, 20, 20]
    images, labels = stream((400, 10, 100))  # a class with fewer items than its share keeps them all
    buffer = BalancedBuffer(60, "cpu", 3)
    fill(buffer, images, labels, batch=7)
    assert torch.bincount(buffer.labels, minlength=3).tolist() == [25, 10, 25]
    # and the images travel with their labels
    assert torch.equal(labels[buffer.images[:, 0]], buffer.labels)


def test_nme_assigns_each_image_to_the_nearest_class_mean():
    torch.manual_seed(0)
    features, labels = torch.randn(30, 4), torch.tensor([0, 1, 3] * 10)
    means, present = class_means(features, labels, 5)
    queries = torch.randn(12, 4)
    logits = nme_logits(queries, means, present)
    for query, row in zip(queries, logits):
        distances = {c: float(((query - features[labels == c].mean(0)) ** 2).sum()) for c in (0, 1, 3)}
        assert int(row.argmax()) == min(distances, key=distances.get)
        assert row[2] == float("-inf") and row[4] == float("-inf")
        assert row[1] == pytest.approx(-distances[1], rel=1e-5)


def test_an_nme_run_records_the_heads_accuracy_beside(tmp_path):
    flags = ("--model", "der", "--buffer_size", "50", "--n_epochs", "1", "--threads", "1")
    nme = run_main(tmp_path / "nme", *flags, "--calibration", "nme")
    head = run_main(tmp_path / "head", *flags)
    assert nme["calibration_fit"]["head"]["class_il"]["matrix"] == head["class_il"]["matrix"]
    assert nme["class_il"]["matrix"] != head["class_il"]["matrix"]
    assert nme["class_il"]["final_avg"] > head["class_il"]["final_avg"]  # the head is recency-biased here


def test_a_balanced_memory_run_resumes_to_the_same_matrix(tmp_path, monkeypatch):
    from models.er import Er

    flags = ["--model", "er", "--buffer_policy", "balanced", "--buffer_size", "30", "--n_epochs", "1", "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, Er, 70, resumed) == 0
    assert read_records(tmp_path / "resumed")[-1]["class_il"]["matrix"] == whole["class_il"]["matrix"]


@pytest.mark.parametrize("flags, words", [
    (["--model", "xder", "--buffer_size", "20", "--buffer_policy", "balanced"], "its memory has its own policy"),
    (["--model", "sgd", "--buffer_policy", "balanced"], "it has no buffer"),
    (["--model", "sgd", "--calibration", "nme"], "replay models")])
def test_what_cannot_be_balanced_or_nearest_mean_is_refused(tmp_path, flags, words):
    result = run_cli(*flags, "--results_path", str(tmp_path / "r"))
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and not (tmp_path / "r").exists()
