"""Streams without task boundaries (utils/core/streams.py) and online training: the blurry and gradual builders
against their definitions, --passes, A_AUC, every task-free model on both streams, the refusals, and an exact
resume in the middle of a batch's passes."""
import math

import pytest
import torch

import main
from models import MODELS
from models.base import ContinualModel
from tests.helpers import build_model, interrupt_then_resume, read_records, run_main
from tests.test_host_sync import guarded  # noqa: F401 (the fixture that fails a step reading the host)
from utils.core.buffer import Buffer
from utils.core.stability import anytime_accuracy, area_under_accuracy
from utils.core.streams import blurry_segments, gradual_segments, nominal_tasks, sigmoid_mixing
from utils.core.training import Trainer

TASK_FREE = sorted(name for name in MODELS.names() if MODELS.get(name).TASK_FREE_REFUSAL is None)
REPLAY = {name for name in MODELS.names() if MODELS.get(name).NEEDS_BUFFER}


def labels_of(n_classes, per_class):
    """Labels of a hand-made split: `per_class` samples of each class, interleaved."""
    return torch.arange(n_classes).repeat(per_class)


def segment_of(segments, n):
    """[n]: the segment each sample index is in."""
    where = torch.full((n,), -1)
    for index, segment in enumerate(segments):
        where[segment] = index
    return where


def blurry(seed=0, disjoint=50, mix=10, per_class=1000):
    return blurry_segments(labels_of(10, per_class), 5, 2, disjoint, mix, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("build", [lambda seed: blurry(seed),
                                   lambda seed: gradual_segments(labels_of(10, 300), 5, 2, 0.2,
                                                                 torch.Generator().manual_seed(seed))])
def test_a_stream_is_drawn_from_its_seed_and_holds_every_sample_once(build):
    first, again, other = build(3), build(3), build(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    stream = torch.cat(first)
    assert torch.equal(stream.sort().values, torch.arange(len(stream)))


@pytest.mark.parametrize("disjoint,mix", [(50, 10), (20, 30), (0, 10), (100, 50)])
def test_blurry_keeps_n_percent_of_the_classes_disjoint_and_deals_m_percent_of_the_others(disjoint, mix):
    labels, n_tasks = labels_of(10, 1000), 5
    segments = blurry(disjoint=disjoint, mix=mix)
    where, home = segment_of(segments, len(labels)), labels // 2
    outside = [(where[labels == c] != home[labels == c]).float().mean().item() for c in range(10)]
    disjoint_classes = [c for c in range(10) if outside[c] == 0]
    assert len(disjoint_classes) == round(disjoint * 10 / 100)
    per_task = torch.bincount(torch.tensor(disjoint_classes, dtype=torch.long) // 2, minlength=n_tasks)
    assert per_task.max() - per_task.min() <= 1  # spread over the tasks as evenly as they divide
    for c in set(range(10)) - set(disjoint_classes):  # M % pooled, dealt over all T tasks: M·(T−1)/T % leave
        assert outside[c] == pytest.approx(mix / 100 * (n_tasks - 1) / n_tasks, abs=0.02)
        assert len(set(where[labels == c].tolist())) == n_tasks
    if disjoint == 50:  # every task one disjoint and one blurry class: the pool is dealt in equal parts
        assert max(map(len, segments)) - min(map(len, segments)) <= 1


def test_gradual_mixes_each_boundary_with_the_sigmoid_of_its_width():
    per_task, width = 50000, 0.2  # two tasks of 50,000 samples: W = 10,000 samples
    labels = torch.cat([torch.zeros(per_task, dtype=torch.long), torch.full((per_task,), 2)])
    segments = gradual_segments(labels, 2, 2, width, torch.Generator().manual_seed(0))
    stream_tasks = labels[torch.cat(segments)] // 2
    boundary, bin_size = per_task, 1000
    for start in range(boundary - 20000, boundary + 20000, bin_size):
        share = stream_tasks[start:start + bin_size].float().mean().item()
        expected = sigmoid_mixing(start + bin_size / 2, boundary, width * per_task).item()
        assert share == pytest.approx(expected, abs=0.05), start
    assert stream_tasks[boundary - 500:boundary + 500].float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert stream_tasks[:20000].float().mean() < 0.01 and stream_tasks[-20000:].float().mean() > 0.99  # sharp
    assert [len(s) for s in segments] == [per_task, per_task]


def test_a_segment_stands_for_the_task_of_its_share_of_the_stream():
    assert nominal_tasks(5, 5) == [0, 1, 2, 3, 4]
    assert nominal_tasks(27, 1) == [0] * 27
    assert nominal_tasks(6, 3) == [0, 0, 1, 1, 2, 2]


def curve_point(samples, *accuracies):
    return {"step": samples // 10, "task": len(accuracies) - 1, "epoch": 0, "samples": samples,
            "class_il": list(accuracies) + [None] * (3 - len(accuracies))}


def test_anytime_accuracy_and_the_area_under_the_accuracy_curve():
    curve = [curve_point(100, 80), curve_point(200, 60), curve_point(250, 70, 50), curve_point(400, 40, 60, 20)]
    means = [80, 60, 60, 40]
    assert anytime_accuracy(curve) == pytest.approx(sum(means) / 4)  # AAA: every point alike
    widths = [100, 100, 50, 150]  # A_AUC: each point for the samples since the one before
    assert area_under_accuracy(curve) == pytest.approx(sum(m * w for m, w in zip(means, widths)) / 400)
    even = [curve_point(100 * (i + 1), a) for i, a in enumerate([10, 30, 50, 90])]
    assert area_under_accuracy(even) == pytest.approx(45)  # i-Blurry's mean of evenly spaced points
    assert area_under_accuracy([{k: v for k, v in p.items() if k != "samples"} for p in curve]) is None


def test_passes_take_k_steps_per_batch_and_fill_the_buffer_once(tmp_path, monkeypatch):
    observed, added, batches = [], [], []
    real_observe, real_add, real_step = MODELS.get("er").observe, Buffer.add, Trainer.train_step

    def observe(self, images, labels):
        observed.append(labels.clone())
        return real_observe(self, images, labels)

    def add(self, images, labels, logits=None):
        added.append(labels.clone())
        return real_add(self, images, labels, logits)

    def train_step(self, batch, bar):
        batches.append(batch.clone())
        return real_step(self, batch, bar)
    monkeypatch.setattr(MODELS.get("er"), "observe", observe)
    monkeypatch.setattr(Buffer, "add", add)
    monkeypatch.setattr(Trainer, "train_step", train_step)
    record = run_main(tmp_path, "--model", "er", "--buffer_size", "20", "--stream", "blurry", "--passes", "3")
    assert len(observed) == 3 * len(batches) and len(added) == len(batches)
    for index, batch_labels in enumerate(added):
        assert all(torch.equal(batch_labels, observed[3 * index + k]) for k in range(3))
    seen = torch.cat(batches)
    assert torch.equal(seen.sort().values, torch.arange(len(seen)))  # every training sample once in the pass
    assert record["args"]["passes"] == 3 and record["args"]["mask_scope"] == "batch"


def test_prequential_accuracy_counts_each_batch_once():
    model, dataset = build_model("--model", "er", "--buffer_size", "10", "--stream", "gradual")
    model.start_task_free()
    images, labels = dataset.splits.train_images[:10], dataset.splits.train_labels[:10]
    for first, last in ((True, False), (False, False), (False, True)):
        model.train_step(images, labels, first, last)
    assert model.online_seen == [10, 0, 0, 0, 0] and model.buffer.size == 10


def test_balanced_softmax_reads_the_running_count_where_no_task_starts():
    model, dataset = build_model("--model", "er", "--buffer_size", "10", "--mask", "balanced", "--stream", "blurry")
    model.start_task_free()
    labels = torch.tensor([0, 0, 3])
    model.train_step(dataset.splits.train_images[:3], labels)
    expected = torch.zeros(model.n_classes)
    expected[0], expected[3] = 2, 1
    assert torch.equal(model.counts.distribution, expected)  # the step's own rows; the next steps add theirs
    logits = torch.zeros(3, model.n_classes)
    adjusted = model.mask(logits, torch.ones_like(logits, dtype=torch.bool))
    assert adjusted[0, 0] == pytest.approx(math.log(2)) and adjusted[0, 1] == -math.inf


@pytest.mark.parametrize("stream", ["blurry", "gradual"])
@pytest.mark.parametrize("model", TASK_FREE)
def test_every_task_free_model_runs_on_a_stream_without_boundaries(tmp_path, model, stream):
    scope = "batch" if TASK_FREE.index(model) % 2 else "recent"
    buffer = ["--buffer_size", "20"] if model in REPLAY else []
    record = run_main(tmp_path, "--model", model, "--mask", "general", "--mask_scope", scope, "--stream", stream,
                      *buffer, "--eval_every", "40")
    assert record["args"]["stream"] == stream and record["args"]["mask_scope"] == scope
    assert len(record["class_il"]["matrix"]) == 5 and record["class_il"]["final_avg"] >= 0
    assert 0 <= record["a_auc"] <= 100 and 0 <= record["anytime_accuracy"] <= 100
    assert sum(record["online_accuracy"]["per_task"]) > 0


@pytest.mark.parametrize("mask", ["balanced", "las", "general"])
def test_a_task_free_step_reads_nothing_on_the_host(tmp_path, guarded, mask):  # noqa: F811
    run_main(tmp_path, "--model", "derpp", "--buffer_size", "20", "--stream", "gradual", "--passes", "2", "--mask",
             mask, "--batch_size", "100", "--threads", "1")


def test_begin_and_end_task_are_never_called_without_boundaries(tmp_path, monkeypatch):
    def refuse(*args):
        raise AssertionError("a task was announced")
    for name in ("begin_task", "end_task", "calibrate"):
        monkeypatch.setattr(ContinualModel, name, refuse)
    run_main(tmp_path, "--model", "der", "--buffer_size", "20", "--stream", "gradual", "--mask", "las")


REFUSED = [
    (["--model", "xder", "--buffer_size", "20", "--stream", "blurry"], "--model", "its heads are per task"),
    (["--model", "agem", "--buffer_size", "20", "--stream", "gradual"], "--model", "filled at task ends"),
    (["--model", "er", "--buffer_size", "20", "--stream", "blurry", "--mask", "ninf", "--mask_scope", "task"],
     "--mask_scope", "'task'"),
    (["--model", "er", "--buffer_size", "20", "--stream", "blurry", "--mask_scope", "new"], "--mask_scope", "'new'"),
    (["--model", "er", "--buffer_size", "20", "--stream", "gradual", "--calibration", "wa"], "--calibration", "'wa'"),
    (["--model", "er", "--buffer_size", "20", "--stream", "gradual", "--calibration", "bic"], "--calibration",
     "'bic'"),
    (["--model", "er", "--buffer_size", "20", "--stream", "blurry", "--mask", "ninf", "--mask_buffer"],
     "--mask_buffer", "keeps classes by the task"),
    (["--model", "er", "--buffer_size", "20", "--stream", "blurry", "--lr_milestones", "1"], "--lr_milestones",
     "restarts at every task"),
    (["--model", "sgd", "--stream", "blurry", "--blurry_disjoint", "101"], "--blurry_disjoint", "'101'"),
    (["--model", "sgd", "--stream", "blurry", "--blurry_mix", "-1"], "--blurry_mix", "'-1'"),
    (["--model", "sgd", "--stream", "gradual", "--transition_width", "0"], "--transition_width", "'0'"),
    (["--model", "sgd", "--stream", "gradual", "--transition_width", "-0.5"], "--transition_width", "'-0.5'"),
    (["--model", "sgd", "--passes", "0"], "--passes", "'0'"),
    (["--model", "sgd", "--stream", "wavy"], "--stream", "'wavy'"),
    (["--model", "sgd", "--blurry_mix", "30"], "--blurry_mix", "--stream blurry"),
    (["--model", "sgd", "--stream", "blurry", "--transition_width", "0.5"], "--transition_width", "--stream gradual"),
]


@pytest.mark.parametrize("argv,flag,words", REFUSED)
def test_what_needs_a_task_is_refused_in_one_line(tmp_path, capsys, argv, flag, words):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("main.py: error:"), err
    assert flag in err and words in err, err
    assert not (tmp_path / "results").exists()


def test_defaults_that_need_a_task_become_task_free():
    from tests.helpers import parse
    args = parse("--model", "ermr", "--buffer_size", "20", "--stream", "blurry", "--dataset", "seq-cifar100")[0]
    assert args.mask_scope == "batch" and args.lr_milestones == []
    on_tasks = parse("--model", "ermr", "--buffer_size", "20", "--dataset", "seq-cifar100")[0]
    assert on_tasks.mask_scope == "task" and on_tasks.lr_milestones == [35, 45]
    assert parse("--model", "er", "--buffer_size", "20", "--stream", "blurry", "--mask", "las")[0].mask_buffer


def test_a_blurry_run_stopped_between_passes_resumes_to_the_same_result(tmp_path, monkeypatch, capsys):
    flags = ["--model", "derpp", "--buffer_size", "20", "--stream", "blurry", "--passes", "2", "--mask", "balanced",
             "--eval_every", "25", "--quiet", "--seed", "2"]
    expected = run_main(tmp_path / "reference", *flags)
    resumed_flags = flags + ["--checkpoint_dir", str(tmp_path / "ckpt"), "--results_path", str(tmp_path / "resumed")]
    assert interrupt_then_resume(monkeypatch, MODELS.get("derpp"), 151, resumed_flags) == 0  # batch 76's 1st pass
    assert "of that epoch and 1 --passes step(s) on the next batch" in capsys.readouterr().out
    resumed = read_records(tmp_path / "resumed")[-1]
    for field in ("class_il", "task_il", "eval_curve", "a_auc", "online_accuracy"):
        assert resumed[field] == expected[field], field
