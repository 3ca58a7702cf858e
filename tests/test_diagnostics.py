"""utils/core/diagnostics.py and utils/core/metrics.py: per-step gradient and probability diagnostics of the
model's own stream loss against hand computation for every mask,
the task-confusion matrix and recency bias, TensorBoard events read back (also across a resume)."""
import os
from types import MethodType, SimpleNamespace

import numpy as np
import pytest
import torch

import main
from models.base import ContinualModel
from tests.helpers import counts_at_a_step, interrupt_then_resume, read_records, run_main
from utils.core.diagnostics import Diagnostics
from utils.core.masks.base import build_mask
from utils.core.metrics import old_new_accuracy, recency_bias, task_confusion

# 3 tasks × 2 classes; the current task is task 1 (classes 2, 3)
LOGITS = torch.tensor([[1.0, -0.5, 2.0, 0.3, 0.7, -1.2], [0.2, 1.4, -0.3, 1.1, -0.8, 0.5]], dtype=torch.float64)
LABELS = torch.tensor([2, 3])
COUNTS = torch.tensor([5.0, 7.0, 3.0, 4.0, 1.0, 1.0])


def diagnose(name, value=None):
    """The window after one backward of ContinualModel.stream_loss itself, on a stand-in for the model
    that holds only what the stream loss reads (task 1 of 3, task scope)."""
    counts = counts_at_a_step(LABELS, 6, distribution=COUNTS)
    model = SimpleNamespace(args=SimpleNamespace(mask_scope="task"), classes_per_task=2, n_classes=6, task=1,
                            task_free=False, counts=counts, mask=build_mask(name, value, counts=counts),
                            diagnostics=Diagnostics(6, 2, "cpu"))
    model.position = MethodType(ContinualModel.position, model)
    ContinualModel.stream_loss(model, LOGITS.clone().requires_grad_(True), LABELS).backward()
    return model.diagnostics.read_window()


def expected(name, m=None):
    """Hand computation: ẑ per the mask, p = softmax(ẑ), ∂L/∂z = (p − y)/B on the classes that get a
    gradient, group masses mean_i Σ_j |∂L/∂z_ij|, masked mass mean_i Σ_{j masked} p_ij."""
    z = LOGITS.numpy()
    kept = np.zeros((2, 6), dtype=bool)
    kept[:, 2:4] = True
    if name == "none":
        z_hat, flows = z, np.ones_like(kept)
    elif name == "ninf":
        z_hat, flows = np.where(kept, z, -np.inf), kept
    elif name == "general":
        z_hat, flows = np.where(kept, z, m), kept
    elif name == "stopgrad":
        z_hat, flows = np.where(kept, z, z + m), kept
    else:
        z_hat, flows = z + np.log(COUNTS.numpy()), np.ones_like(kept)
    p = np.exp(z_hat - z_hat.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.eye(6)[LABELS.numpy()]
    grad = np.where(flows, (p - y) / 2, 0.0)
    mass = [np.abs(grad[:, cols]).sum(1).mean() for cols in (slice(0, 2), slice(2, 4), slice(4, 6))]
    logit = [z[:, cols].mean() for cols in (slice(0, 2), slice(2, 4), slice(4, 6))]
    return mass, logit, (p * ~kept).sum(1).mean()


@pytest.mark.parametrize("name,m", [("none", None), ("ninf", None), ("general", 0.0), ("general", -3.0),
                                    ("stopgrad", 0.0), ("stopgrad", -3.0), ("balanced", None)])
def test_group_masses_and_masked_probability_by_hand(name, m):
    got = diagnose(name, m)
    mass, logit, masked = expected(name, m)
    assert [got["grad/old"], got["grad/current"], got["grad/future"]] == pytest.approx(mass, abs=1e-6)
    assert [got["logit/old"], got["logit/current"], got["logit/future"]] == pytest.approx(logit, abs=1e-6)
    assert got["prob/masked"] == pytest.approx(masked, abs=1e-6)
    if name in ("ninf", "general", "stopgrad"):
        assert got["grad/old"] == 0.0 and got["grad/future"] == 0.0
    if name == "ninf":
        assert got["prob/masked"] == 0.0
    if name == "general":
        assert got["prob/masked"] == pytest.approx(np.mean([4 * np.exp(m) / (4 * np.exp(m) + np.exp(z[2:4]).sum())
                                                            for z in LOGITS.numpy()]))


def test_confusion_recency_and_old_new_accuracy_by_hand():
    counts = [[6, 1, 3], [2, 5, 3], [0, 1, 9]]  # rows: true task, columns: predicted task
    assert task_confusion(counts)[0] == [60.0, 10.0, 30.0]
    assert recency_bias(counts) == pytest.approx(100 * (3 + 3) / 20)
    assert recency_bias([[7, 3]]) is None and recency_bias([[10]]) is None  # after the first task: no old tasks
    assert old_new_accuracy([6, 5, 9], [10, 10, 10]) == (55.0, 90.0)


def test_results_line_holds_the_series(tmp_path, capsys):
    record = run_main(tmp_path, "--model", "der", "--buffer_size", "20")
    assert len(record["recency_bias"]) == 5 and record["recency_bias"][0] is None
    assert all(0 <= v <= 100 for v in record["recency_bias"][1:])
    confusion = record["task_confusion"]
    assert len(confusion) == 5 and all(sum(row) == pytest.approx(100) for row in confusion)
    assert record["new_accuracy"][-1] == record["class_il"]["matrix"][-1][-1]
    assert len(record["diagnostics"]) == 5 and record["diagnostics"][0]["grad/old"] == 0.0
    assert record["diagnostics"][1]["grad/old"] > 0 and record["diagnostics"][1]["grad/current"] > 0  # none pushes old
    assert "recency_bias" in capsys.readouterr().out
    assert not any("tfevents" in name for _, _, files in os.walk(tmp_path) for name in files)


def scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)], set(events.Tags()["scalars"])


def test_event_files_read_back_and_continue_across_a_resume(tmp_path, monkeypatch):
    flags = ["--model", "derpp", "--mask", "general", "--buffer_size", "20", "--quiet", "--log_every", "5",
             "--results_path", str(tmp_path / "results")]
    assert main.main(flags + ["--log_dir", str(tmp_path / "whole")]) == 0
    whole, tags = scalars(tmp_path / "whole", "grad/current")
    for tag in ("grad/old", "grad/current", "grad/future", "prob/masked", "loss/ce", "loss/mse", "lr",
                "acc_class_il/task1", "acc_task_il/task5", "eval/recency_bias", "grad_buffer/current"):
        assert tag in tags
    assert [step for step, _ in whole] == list(range(5, 5 * len(whole) + 1, 5))

    from models.derpp import Derpp
    resumed = flags + ["--log_dir", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt"), "--rerun"]
    assert interrupt_then_resume(monkeypatch, Derpp, 47, resumed) == 0
    again, _ = scalars(tmp_path / "resumed", "grad/current")
    assert [step for step, _ in again] == [step for step, _ in whole]
    assert [value for _, value in again] == pytest.approx([value for _, value in whole])


class Killed(BaseException):
    """Stands in for SIGKILL: the run stops between checkpoints, its later events already on disk."""


def test_events_after_the_last_checkpoint_are_purged_on_resume(tmp_path, monkeypatch):
    from models.derpp import Derpp
    flags = ["--model", "derpp", "--buffer_size", "20", "--quiet", "--log_every", "5",
             "--results_path", str(tmp_path / "results")]
    assert main.main(flags + ["--log_dir", str(tmp_path / "whole")]) == 0
    whole, _ = scalars(tmp_path / "whole", "loss/ce")
    real_observe, calls = Derpp.observe, [0]

    def observe_then_die(self, images, labels):
        calls[0] += 1
        if calls[0] == 62:  # task 3: after the task-2 checkpoint (step 54) and the event of step 60
            raise Killed
        return real_observe(self, images, labels)
    monkeypatch.setattr(Derpp, "observe", observe_then_die)
    killed = flags + ["--log_dir", str(tmp_path / "killed"), "--checkpoint_dir", str(tmp_path / "ckpt"), "--rerun"]
    with pytest.raises(Killed):
        main.main(killed)
    monkeypatch.setattr(Derpp, "observe", real_observe)
    assert main.main(killed + ["--resume"]) == 0
    again, _ = scalars(tmp_path / "killed", "loss/ce")
    assert [step for step, _ in again] == [step for step, _ in whole]
    assert [value for _, value in again] == pytest.approx([value for _, value in whole])


def test_diagnostics_every_k_gives_the_means_over_every_kth_step_and_the_same_training(tmp_path, monkeypatch):
    """--diagnostics_every 4: each task's loss terms are the means of the values every step records at K = 1,
    over the steps whose index (counted over the whole run) is a multiple of 4; accuracies do not move."""
    events, record_terms, read_task = [], Diagnostics.record_terms, Diagnostics.read_task

    def capture_terms(self, names, values):
        events.append((self.steps - 1, dict(zip(names, values.tolist()))))
        return record_terms(self, names, values)

    def capture_task_end(self):
        events.append(None)
        return read_task(self)
    monkeypatch.setattr(Diagnostics, "record_terms", capture_terms)
    monkeypatch.setattr(Diagnostics, "read_task", capture_task_end)
    every_step = run_main(tmp_path / "k1", "--model", "der", "--buffer_size", "20")
    monkeypatch.setattr(Diagnostics, "record_terms", record_terms)
    monkeypatch.setattr(Diagnostics, "read_task", read_task)
    sampled = run_main(tmp_path / "k4", "--model", "der", "--buffer_size", "20", "--diagnostics_every", "4")

    assert sampled["class_il"] == every_step["class_il"] and sampled["online_accuracy"] == every_step["online_accuracy"]
    tasks, current = [], []
    for event in events:
        if event is None:
            tasks.append(current)
            current = []
        else:
            current.append(event)
    assert len(tasks) == 5 and sum(map(len, tasks)) > 100
    for task, steps in enumerate(tasks):
        kept = [values for index, values in steps if index % 4 == 0]
        assert 0 < len(kept) < len(steps)
        assert list(steps[0][1]) == (["ce"] if task == 0 else ["ce", "mse"])
        for term in steps[0][1]:
            assert sampled["diagnostics"][task][f"loss/{term}"] == pytest.approx(
                np.mean([values[term] for values in kept]), rel=1e-5)
            assert every_step["diagnostics"][task][f"loss/{term}"] == pytest.approx(
                np.mean([values[term] for _, values in steps]), rel=1e-5)
        assert set(sampled["diagnostics"][task]) == set(every_step["diagnostics"][task])


def test_diagnostics_every_k_resumes_where_it_stopped(tmp_path, monkeypatch):
    from models.der import Der
    flags = ["--model", "der", "--buffer_size", "20", "--diagnostics_every", "3", "--quiet",
             "--results_path", str(tmp_path / "results")]
    whole = run_main(tmp_path / "whole", *flags[:-2])
    resumed = flags + ["--checkpoint_dir", str(tmp_path / "ckpt"), "--rerun"]
    assert interrupt_then_resume(monkeypatch, Der, 47, resumed) == 0
    again = read_records(tmp_path / "results")[-1]
    assert again["diagnostics"] == whole["diagnostics"] and again["class_il"] == whole["class_il"]
