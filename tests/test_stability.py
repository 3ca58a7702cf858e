"""utils/core/stability.py on hand-made curves against hand-computed values: a dip that recovers, one that
never does, a single task."""
import pytest
import torch

from utils.core.stability import (
    anytime_accuracy,
    min_accuracies,
    stability_gaps,
    summarize_stability,
    worst_case_accuracy,
)


def point(step, task, epoch, *accuracies):
    return {"step": step, "task": task, "epoch": epoch, "class_il": list(accuracies) + [None] * (3 - len(accuracies))}


# task 0 learned to 90; at the switch to task 1 it falls to 40 in the first epoch and recovers to 89.5
# (within 1 point) at step 40; at the switch to task 2 the old mean falls from 82.5 to 50 and stays below
RECOVERS = [point(10, 0, 0, 80), point(20, 0, 1, 90),
            point(25, 1, 0, 40, 30), point(30, 1, 0, 60, 50), point(40, 1, 1, 89.5, 70), point(50, 1, 1, 90, 75),
            point(55, 2, 0, 50, 50, 20), point(60, 2, 0, 55, 60, 40), point(70, 2, 1, 60, 70, 80)]


def test_anytime_accuracy_is_the_mean_over_points_of_the_seen_mean():
    seen_means = [80, 90, 35, 55, 79.75, 82.5, 40, 155 / 3, 70]
    assert anytime_accuracy(RECOVERS) == pytest.approx(sum(seen_means) / 9)


def test_min_acc_per_old_task_and_worst_case_accuracy():
    assert min_accuracies(RECOVERS, 3) == [40, 50]  # task 0 at step 25, task 1 at step 55
    final_row = [60, 70, 80]
    assert worst_case_accuracy(RECOVERS, 3, final_row) == pytest.approx(80 / 3 + (2 / 3) * 45)


def test_the_gap_of_each_switch_and_its_recovery():
    first, second = stability_gaps(RECOVERS, 3)
    assert first == {"task": 1, "before": 90, "minimum": 40, "gap": 50, "recovery_steps": 20}
    assert second["before"] == pytest.approx(82.5) and second["minimum"] == 50
    assert second["gap"] == pytest.approx(32.5) and second["recovery_steps"] is None  # never within 1 point


def test_the_share_of_switches_that_recover_tells_a_gap_from_forgetting():
    gap = summarize_stability(RECOVERS, 3, [60, 70, 80])["stability_gap"]
    assert gap["recovered_share"] == 50 and gap["mean_recovered"] == 50  # task 1's switch recovers, task 2's never
    assert gap["mean_unrecovered"] == pytest.approx(32.5)
    assert gap["mean"] == pytest.approx(41.25)


def test_one_task_has_no_old_task_and_no_gap():
    curve = [point(10, 0, 0, 50), point(20, 0, 0, 70)]
    summary = summarize_stability(curve, 1, [70])
    assert summary["anytime_accuracy"] == 60 and summary["wc_acc"] is None
    assert summary["min_acc"] == {"per_task": [], "mean": None} and summary["stability_gap"]["per_switch"] == []
    assert summarize_stability([], 5, [1] * 5)["anytime_accuracy"] is None
    assert summary["stability_gap"]["recovered_share"] is None


def test_the_subset_is_class_balanced_fixed_and_drawn_from_the_seed():
    from tests.helpers import build_model
    from utils.core.evaluation import evaluation_subsets
    _, dataset = build_model("--model", "sgd")
    first, again, other = (evaluation_subsets(dataset, 20, seed) for seed in (3, 3, 4))
    labels = dataset.splits.test_labels
    for task, indices in first.items():
        assert torch.bincount(labels[indices], minlength=10)[2 * task:2 * task + 2].tolist() == [10, 10]
        assert torch.equal(indices, again[task])
    assert any(not torch.equal(first[t], other[t]) for t in first)
    whole = evaluation_subsets(dataset, 0, 3)
    assert torch.equal(whole[1], dataset.task_indices(1, train=False))


def test_eval_every_leaves_training_untouched_and_resumes_continuously(tmp_path, monkeypatch):
    from models.der import Der
    from tests.helpers import interrupt_then_resume, read_records, run_main
    from utils.plumbing.checkpoint import load_latest
    flags = ["--model", "der", "--mask", "general", "--buffer_size", "20", "--quiet"]
    plain = run_main(tmp_path / "plain", *flags, "--checkpoint_dir", str(tmp_path / "ckpt-plain"))
    curved = run_main(tmp_path / "curved", *flags, "--eval_every", "5", "--checkpoint_dir", str(tmp_path / "ckpt"))
    assert curved["class_il"]["matrix"] == plain["class_il"]["matrix"]
    assert curved["diagnostics"] == plain["diagnostics"] and plain["eval_curve"] is None
    weights = [load_latest(tmp_path / name)[0]["model"]["module"] for name in ("ckpt-plain", "ckpt")]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    steps = [p["step"] for p in curved["eval_curve"]]
    assert steps == sorted(steps) and all(s % 5 == 0 or p["epoch"] == 0 for s, p in zip(steps, curved["eval_curve"]))
    resumed = flags + ["--eval_every", "5", "--results_path", str(tmp_path / "resumed"), "--checkpoint_dir",
                       str(tmp_path / "ckpt-resumed")]
    assert interrupt_then_resume(monkeypatch, Der, 70, resumed) == 0
    assert read_records(tmp_path / "resumed")[-1]["eval_curve"] == curved["eval_curve"]


def test_online_accuracy_counts_the_stream_batches_predictions_before_the_step():
    from tests.helpers import build_model
    model, _ = build_model("--model", "er", "--buffer_size", "20")
    model.task = 1  # classes 0..3 are seen: the argmax is taken among them
    logits = torch.full((4, 10), -5.0)
    logits[0, 2] = logits[1, 3] = logits[2, 0] = 1.0
    logits[3, 9] = 9.0  # a future class: not a candidate, so the argmax among 0..3 is class 0
    model.observe_online(logits, torch.tensor([2, 3, 1, 0]))
    assert model.online_accuracy() == {"per_task": [None, 75.0, None, None, None], "mean": 75.0}


class Killed(BaseException):
    """Stands in for SIGKILL: the run stops between checkpoints, with curve points after the last one."""


def test_a_run_killed_between_checkpoints_resumes_with_the_same_curve(tmp_path, monkeypatch):
    import main
    from models.der import Der
    from tests.helpers import read_records
    flags = ["--model", "der", "--buffer_size", "20", "--quiet", "--eval_every", "5"]
    assert main.main(flags + ["--results_path", str(tmp_path / "whole")]) == 0
    whole = read_records(tmp_path / "whole")[-1]["eval_curve"]
    real_observe, calls = Der.observe, [0]

    def observe_then_die(self, images, labels):
        calls[0] += 1
        if calls[0] == 62:  # task 3, after the task-2 checkpoint and the curve points of steps 55 and 60
            raise Killed
        return real_observe(self, images, labels)
    monkeypatch.setattr(Der, "observe", observe_then_die)
    killed = flags + ["--results_path", str(tmp_path / "killed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    with pytest.raises(Killed):
        main.main(killed)
    monkeypatch.setattr(Der, "observe", real_observe)
    assert main.main(killed + ["--resume"]) == 0
    assert read_records(tmp_path / "killed")[-1]["eval_curve"] == whole


def test_a_task_end_on_an_evaluation_step_gives_one_point(tmp_path):
    from tests.helpers import run_main
    record = run_main(tmp_path, "--model", "der", "--buffer_size", "20", "--eval_every", "1", "--eval_subset", "20")
    steps = [p["step"] for p in record["eval_curve"]]
    assert len(steps) == len(set(steps)) == steps[-1]  # one point per step, the task-end one kept
