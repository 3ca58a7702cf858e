"""Every model × every mask trains one epoch on seq-digits and writes a finite result."""
import pytest

from models import MODELS
from tests.helpers import all_finite, model_flags, run_main
from utils.core.masks import MASKS
from utils.plumbing.record import RECORD_FIELDS


@pytest.mark.parametrize("mask", MASKS.names())
@pytest.mark.parametrize("model", MODELS.names())
def test_model_mask_grid(tmp_path, model, mask):
    record = run_main(tmp_path, "--model", model, "--mask", mask, *model_flags(model), "--n_epochs", "1",
                      "--batch_size", "50")  # 6 steps a task: every path runs, cheaply, for 20 models × 8 masks
    assert list(record) == list(RECORD_FIELDS)
    assert record["model"] == model and record["mask"] == mask and record["dataset"] == "seq-digits"
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])
    assert len(record["class_il"]["matrix"]) == 5 and len(record["class_il"]["matrix"][0]) == 5
    assert record["mask_value"] == (-3.0 if mask in ("general", "stopgrad") else None)
    assert 0 < record["train_time_s"] <= record["time_s"]


@pytest.mark.parametrize("model", ["er", "derpp"])
def test_mask_buffer_and_ace_scope(tmp_path, model):
    record = run_main(tmp_path, "--model", model, "--mask", "general", "--mask_value", "-inf", "--mask_buffer",
                      "--mask_scope", "ace", "--buffer_size", "20", "--n_epochs", "1")
    assert record["mask_value"] == "-inf" and record["args"]["mask_scope"] == "ace"
    assert all_finite(record["class_il"])


def test_defaults_come_from_the_model_and_dataset(tmp_path):
    record = run_main(tmp_path, "--model", "derpp", "--buffer_size", "10", "--n_epochs", "1", "--minibatch_size", "3")
    args = record["args"]
    assert record["mask"] == "none" and args["mask_scope"] == "task"
    assert args["lr"] == 0.03 and args["batch_size"] == 10 and args["n_epochs"] == 1 and args["minibatch_size"] == 3
    assert args["alpha"] == 0.1 and args["beta"] == 0.5


def test_same_seed_gives_identical_matrix(tmp_path):
    flags = ("--model", "derpp", "--mask", "stopgrad", "--buffer_size", "30", "--n_epochs", "2")
    first = run_main(tmp_path / "a", *flags, "--seed", "3")
    second = run_main(tmp_path / "b", *flags, "--seed", "3")
    other = run_main(tmp_path / "c", *flags, "--seed", "4")
    assert first["class_il"]["matrix"] == second["class_il"]["matrix"]
    assert first["task_il"]["matrix"] == second["task_il"]["matrix"]
    assert first["class_il"]["matrix"] != other["class_il"]["matrix"]


def test_replay_beats_fine_tuning(tmp_path):
    protocol = ("--n_epochs", "5", "--batch_size", "16", "--lr", "0.1")
    sgd = run_main(tmp_path / "sgd", "--model", "sgd", *protocol)
    er = run_main(tmp_path / "er", "--model", "er", "--buffer_size", "100", *protocol)
    assert er["class_il"]["final_avg"] > sgd["class_il"]["final_avg"] + 20
