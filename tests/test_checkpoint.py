"""Checkpoints: kill-and-resume equality, damaged files, refused pickles, the numerics guard, signals."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT
from tests.helpers import Exploit, read_records, run_cli
from utils.plumbing.checkpoint import CheckpointError, check_same_run, checkpoint_paths, load_latest, save_checkpoint

RUN = ["--model", "derpp", "--mask", "balanced", "--buffer_size", "40", "--n_epochs", "25", "--seed", "5",
       "--quiet"]


def start(flags, results):
    return subprocess.Popen([sys.executable, "main.py", *flags, "--results_path", str(results)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(process, directory, predicate):
    """SIGKILL the run as soon as predicate(newest checkpoint state) holds; False if it ended first."""
    while process.poll() is None:
        paths = checkpoint_paths(directory)
        if paths:
            try:
                state = torch.load(paths[-1], map_location="cpu", weights_only=True)
            except Exception:
                state = None
            if state is not None and predicate(state["position"]):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
        time.sleep(0.005)
    return False


def test_killed_runs_resume_to_the_identical_matrix(tmp_path):
    reference = run_cli(*RUN, "--results_path", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    expected = read_records(tmp_path / "reference")[0]
    directory = tmp_path / "checkpoints"
    flags = RUN + ["--checkpoint_dir", str(directory)]
    first = start(flags, tmp_path / "resumed")
    assert kill_when(first, directory, lambda p: p["task"] == 0 and p["epoch"] >= 3), "run ended before the kill"
    second = start(flags + ["--resume"], tmp_path / "resumed")
    assert kill_when(second, directory, lambda p: p["task"] >= 2), "resumed run ended before the kill"
    assert read_records(tmp_path / "resumed") == []
    final = run_cli(*flags, "--resume", "--results_path", str(tmp_path / "resumed"))
    assert final.returncode == 0, final.stderr
    resumed = read_records(tmp_path / "resumed")
    assert len(resumed) == 1
    assert resumed[0]["class_il"]["matrix"] == expected["class_il"]["matrix"]
    assert resumed[0]["task_il"]["matrix"] == expected["task_il"]["matrix"]


def test_truncated_checkpoint_falls_back_to_the_previous(tmp_path):
    save_checkpoint(tmp_path, {"n": torch.tensor(1)})
    newest = save_checkpoint(tmp_path, {"n": torch.tensor(2)})
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)
    with pytest.warns(UserWarning, match="unusable checkpoint"):
        state, path = load_latest(tmp_path)
    assert state["n"].item() == 1 and path != newest
    assert len(checkpoint_paths(tmp_path)) == 2 and not any(p.endswith(".tmp") for p in os.listdir(tmp_path))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"progress": Exploit(marker)}, tmp_path / "checkpoint-000000.pt")
    with pytest.warns(UserWarning, match="unusable checkpoint"), pytest.raises(CheckpointError):
        load_latest(tmp_path)
    assert not marker.exists()


def test_non_finite_loss_stops_with_exit_3_and_names_the_terms(tmp_path):
    result = run_cli("--model", "der", "--buffer_size", "20", "--lr", "1e30", "--quiet",
                     "--results_path", str(tmp_path))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    for word in ("non-finite", "task 1", "epoch 1", "step", "ce=", "--nan_policy skip"):
        assert word in result.stderr
    assert read_records(tmp_path) == []


def test_nan_policy_skip_counts_skipped_steps(tmp_path):
    result = run_cli("--model", "der", "--buffer_size", "20", "--lr", "1e30", "--n_epochs", "1", "--quiet",
                     "--nan_policy", "skip", "--results_path", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = read_records(tmp_path)[0]
    assert record["skipped_steps"] > 0


def test_resume_with_other_flags_is_refused(tmp_path):
    directory = tmp_path / "checkpoints"
    done = run_cli("--model", "er", "--buffer_size", "10", "--n_epochs", "1", "--quiet",
                   "--checkpoint_dir", str(directory), "--results_path", str(tmp_path))
    assert done.returncode == 0, done.stderr
    refused = run_cli("--model", "er", "--buffer_size", "10", "--n_epochs", "1", "--quiet", "--seed", "9",
                      "--checkpoint_dir", str(directory), "--resume", "--results_path", str(tmp_path))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--seed 0 (now 9)" in refused.stderr


def test_a_checkpoint_from_before_a_later_flag_resumes_at_its_neutral_default():
    saved = {"model": "er", "seed": 0, "amp": None}  # written before --levers existed
    check_same_run(saved, {**saved, "levers": "fixed"})
    with pytest.raises(CheckpointError, match="--levers"):
        check_same_run(saved, {**saved, "levers": "auto"})


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_and_exits(tmp_path, sig, status):
    directory = tmp_path / "checkpoints"
    short_run = RUN[:RUN.index("--n_epochs")] + ["--n_epochs", "8"] + RUN[RUN.index("--n_epochs") + 2:]
    process = start(short_run + ["--checkpoint_dir", str(directory)], tmp_path)
    while process.poll() is None and not checkpoint_paths(directory):
        time.sleep(0.005)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "--resume" in out + err
    state, _ = load_latest(directory)
    assert state["position"]["task"] < 5
    resumed = run_cli(*short_run, "--checkpoint_dir", str(directory), "--resume", "--results_path", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("mask", ["las", "balanced"])
def test_a_checkpoint_from_before_the_label_counts_had_one_owner_loads(mask):
    """Written before: the classes seen in a buffer of their own, LAS's window and balanced softmax's log counts
    in the mask's state."""
    from tests.helpers import build_model

    flags = ["--model", "er", "--buffer_size", "20", "--mask", mask] + (["--window", "3"] if mask == "las" else [])
    model, dataset = build_model(*flags)
    indices = dataset.task_indices(0)
    model.begin_task(0, dataset.splits.train_labels[indices])
    for step in range(4):
        batch = indices[10 * step:10 * step + 10]
        model.train_step(dataset.splits.train_images[batch], dataset.splits.train_labels[batch])
    state = model.checkpoint_state()
    counts = state.pop("label_counts")
    state["module"]["seen_classes"] = model.counts.seen()
    state["mask"] = ({"steps": counts["steps"], "position": counts["position"]} if mask == "las"
                     else {"log_counts": counts["distribution"].float().log()})
    fresh, _ = build_model(*flags)
    fresh.load_checkpoint_state(state)
    z = torch.randn(5, dataset.n_classes)
    assert torch.equal(fresh.mask(z, None), model.mask(z, None))
    assert torch.equal(fresh.counts.total, model.counts.total)


def as_written_before(state):
    """A checkpoint state in the layout before the loop's state was split and the label counts had one owner."""
    position, history = state.pop("position"), state.pop("history")
    state["progress"] = {**position, **history, "train_time_s": state.pop("train_time_s")}
    counts = state["model"].pop("label_counts")
    state["model"]["module"]["seen_classes"] = state["model"]["module"]["trained_label_counts"] > 0
    state["model"]["mask"] = {"steps": counts["steps"], "position": counts["position"]}  # las's mask state
    return state


def test_a_run_interrupted_before_the_new_layout_resumes_to_the_same_matrix(tmp_path, monkeypatch):
    from models.der import Der
    from tests.helpers import interrupt_then_resume, run_main

    flags = ["--model", "der", "--mask", "las", "--window", "2", "--buffer_size", "20", "--n_epochs", "2", "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    directory = tmp_path / "ckpt"

    def rewrite_the_newest_checkpoint():
        state, path = load_latest(directory)
        torch.save(as_written_before(state), path)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(directory)]
    assert interrupt_then_resume(monkeypatch, Der, 70, resumed, between=rewrite_the_newest_checkpoint) == 0
    assert read_records(tmp_path / "resumed")[-1]["class_il"]["matrix"] == whole["class_il"]["matrix"]
