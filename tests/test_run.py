"""utils/plumbing/run.py and main.py: results never lost or written twice, checkpoints of distinct runs never
shared, resume of finished and not-yet-started runs, read-only data, resume position and early signals, exact
accuracies, run identity in the results line."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

import main
from datasets.base import ContinualDataset
from tests.conftest import ROOT
from tests.helpers import interrupt_then_resume, read_records, run_main
from utils.core.metrics import accuracy
from utils.plumbing.checkpoint import checkpoint_paths
from utils.plumbing.cli import parse_args
from utils.plumbing.identity import default_checkpoint_dir
from utils.plumbing.results_file import ResultsPathError, check_results_path

SHORT = ["--model", "er", "--buffer_size", "10", "--n_epochs", "1", "--quiet"]


def exit_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("main.py: error:"), err
    return err


# results path

def test_results_path_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    err = exit_line(capsys, SHORT + ["--results_path", str(blocker)])
    assert "--results_path" in err and "is a file" in err
    err = exit_line(capsys, SHORT + ["--results_path", str(blocker / "deeper" / "still")])
    assert "--results_path" in err and "is a file" in err
    assert blocker.read_text() == "not a folder" and sorted(os.listdir(tmp_path)) == ["results"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_results_path_without_write_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    err = exit_line(capsys, SHORT + ["--results_path", str(locked / "results")])
    assert "cannot append" in err and not os.listdir(locked)


def test_probing_the_results_path_leaves_nothing_behind(tmp_path):
    check_results_path(str(tmp_path / "a" / "b"))
    assert os.listdir(tmp_path) == []
    with pytest.raises(ResultsPathError, match="is a folder"):
        os.makedirs(tmp_path / "r" / "results.jsonl")
        check_results_path(str(tmp_path / "r"))


def test_disk_failing_at_the_end_keeps_the_record(tmp_path, monkeypatch, capsys):
    import utils.core.training
    results = tmp_path / "results"
    real_run = utils.core.training.Trainer.run

    def run_then_break_the_disk(self, resume_state=None):
        outcome = real_run(self, resume_state)
        shutil.rmtree(results, ignore_errors=True)
        results.write_text("the folder became a file")
        return outcome
    monkeypatch.setattr(utils.core.training.Trainer, "run", run_then_break_the_disk)
    status = main.main(SHORT + ["--results_path", str(results), "--checkpoint_dir", str(tmp_path / "ckpt")])
    out, err = capsys.readouterr()
    assert status == 1 and "final_avg" in out and "Traceback" not in err
    saved = re.search(r"result was saved to (\S+):", err).group(1)
    assert saved.startswith(str(tmp_path / "ckpt"))
    with open(saved, encoding="utf-8") as f:
        record = json.loads(f.read())
    assert record["model"] == "er" and len(record["class_il"]["matrix"]) == 5


# default checkpoint folders

def test_default_checkpoint_folder_differs_for_every_flag_that_changes_the_run():
    base = ["--model", "der", "--buffer_size", "20", "--device", "cpu"]
    variants = [[], ["--mask", "general"], ["--mask", "general", "--mask_value", "-1"], ["--buffer_size", "30"],
                ["--alpha", "0.5"], ["--lr", "0.05"], ["--seed", "1"], ["--eval_future"]]
    folders = [default_checkpoint_dir(parse_args(base + extra)[0]) for extra in variants]
    assert len(set(folders)) == len(folders)
    assert all(f.startswith(os.path.join("checkpoints", "der-seq-digits-")) for f in folders)
    same = parse_args(base + ["--results_path", "elsewhere", "--quiet", "--data_path", "/tmp"])[0]
    assert default_checkpoint_dir(same) == folders[0]


# resume of a finished run, of a run with no checkpoint yet

def test_resume_of_a_finished_run_appends_nothing(tmp_path, capsys):
    flags = SHORT + ["--checkpoint_dir", str(tmp_path / "ckpt")]
    first = run_main(tmp_path, *flags)
    for _ in range(2):
        assert main.main(flags + ["--resume", "--results_path", str(tmp_path / "results")]) == 0
        assert "the run is complete" in capsys.readouterr().out
    records = read_records(tmp_path / "results")
    assert len(records) == 1 and records[0]["run_id"] == first["run_id"]


def test_resume_of_a_finished_run_whose_line_was_never_written_writes_it_once(tmp_path):
    flags = SHORT + ["--checkpoint_dir", str(tmp_path / "ckpt")]
    first = run_main(tmp_path / "a", *flags)
    os.remove(tmp_path / "ckpt" / "complete.json")  # killed after the last checkpoint, before the append
    again = run_main(tmp_path / "b", *flags, "--resume")
    assert again["class_il"]["matrix"] == first["class_il"]["matrix"] and again["run_id"] == first["run_id"]
    run_main(tmp_path / "b", *flags, "--resume")
    assert len(read_records(tmp_path / "b" / "results")) == 1


def test_resume_before_the_first_checkpoint_starts_from_the_beginning(tmp_path, capsys, monkeypatch):
    reference = run_main(tmp_path / "ref", *SHORT)
    fresh = run_main(tmp_path / "new", *SHORT, "--checkpoint_dir", str(tmp_path / "never-written"), "--resume")
    assert "starting from the beginning" in capsys.readouterr().out
    assert fresh["class_il"]["matrix"] == reference["class_il"]["matrix"]
    monkeypatch.chdir(tmp_path)  # without --checkpoint_dir: the default folder, relative to the working dir
    run_main(tmp_path / "default", *SHORT, "--resume")
    assert len(checkpoint_paths(os.path.join(tmp_path, default_checkpoint_dir(parse_args(SHORT)[0])))) == 2


# read-only data

def deny_writes_under(monkeypatch, folder):
    """A read-only mount, as root sees it too: os.access refuses W_OK below `folder`."""
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.abspath(path).startswith(str(folder)):
            return False
        return real_access(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "access", access)


def test_complete_data_in_a_read_only_folder_is_used(tmp_path, monkeypatch):
    data = tmp_path / "shared-data"
    data.mkdir()
    deny_writes_under(monkeypatch, data)
    data.chmod(0o555)
    try:
        record = run_main(tmp_path, *SHORT, "--data_path", str(data))
    finally:
        data.chmod(0o755)
    assert record["args"]["data_path"] == str(data)


def test_download_into_a_read_only_folder_names_the_file(tmp_path, monkeypatch, capsys):
    data = tmp_path / "ro"
    data.mkdir()
    deny_writes_under(monkeypatch, data)
    status = main.main(["--model", "sgd", "--dataset", "seq-mnist", "--data_path", str(data), "--quiet",
                        "--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "cannot be written" in err and str(data) in err and "read-only" in err
    assert os.listdir(data) == [] and not (tmp_path / "results").exists()


def test_tinyimg_cache_in_a_read_only_folder_warns_and_loads(tmp_path, monkeypatch):
    import datasets.seq_tinyimg as tiny
    from tests.test_cifar100_tinyimg import write_tinyimg

    write_tinyimg(tmp_path)
    folder = os.path.join(tmp_path, tiny.FOLDER)

    def refuse(path, write):
        raise PermissionError(13, "Read-only file system", path)
    monkeypatch.setattr(tiny, "write_atomically", refuse)
    with pytest.warns(UserWarning, match=r"cannot write the cache file .*cache_train_images\.npy"):
        splits = tiny.cached_splits(folder)
    assert splits.train_images.shape[1:] == (3, 64, 64)
    assert not any(name.startswith("cache_") for name in os.listdir(folder))


# resume position, signals before the first step

def test_resume_says_where_it_continues(tmp_path, monkeypatch, capsys):
    from models.er import Er
    flags = SHORT + ["--checkpoint_dir", str(tmp_path / "ckpt"), "--results_path", str(tmp_path / "results")]
    assert interrupt_then_resume(monkeypatch, Er, 3, flags) == 0
    assert "at task 1/5, epoch 1/1, after step 3 of that epoch" in capsys.readouterr().out


def test_signal_before_the_first_step_says_nothing_was_trained(tmp_path, monkeypatch, capsys):
    real_prepare = ContinualDataset.prepare

    def prepare_then_signal(self, device, splits=None):
        real_prepare(self, device, splits)
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(ContinualDataset, "prepare", prepare_then_signal)
    monkeypatch.chdir(tmp_path)
    assert main.main(SHORT + ["--results_path", str(tmp_path / "results")]) == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was trained" in err
    assert sorted(os.listdir(tmp_path)) == []


# exact accuracies

def test_accuracies_are_exact_quotients_of_counts(tmp_path):
    assert accuracy(4, 5) == 80.0 and accuracy(1, 3) == 100 / 3
    record = run_main(tmp_path, *SHORT)
    from types import SimpleNamespace

    from datasets.seq_digits import SequentialDigits
    labels = SequentialDigits(SimpleNamespace()).load_splits().test_labels
    sizes = [int(((labels // 2) == task).sum()) for task in range(5)]
    for row in record["class_il"]["matrix"] + record["task_il"]["matrix"]:
        for task, value in enumerate(row):
            if value is not None:
                assert value == 100 * round(value * sizes[task] / 100) / sizes[task]


# run identity

def test_results_line_has_start_time_and_run_id(tmp_path):
    first, second = run_main(tmp_path, *SHORT), run_main(tmp_path, *SHORT, "--rerun")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["started_at"])
    assert re.fullmatch(r"[0-9a-f]{12}", first["run_id"]) and first["run_id"] != second["run_id"]
    assert first["key_hash"] == second["key_hash"]


def test_git_field_is_dirty_with_an_untracked_model_file(tmp_path):
    clone = tmp_path / "clone"
    cloned = subprocess.run(["git", "clone", "-q", ROOT, str(clone)], capture_output=True, text=True)
    if cloned.returncode != 0:
        pytest.skip(f"not a git checkout: {cloned.stderr.strip()}")
    code = "from utils.plumbing.environment import git_revision; print(git_revision())"

    def revision():
        return subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True).stdout.strip()
    assert not revision().endswith("+dirty")
    (clone / "models" / "dropped_in.py").write_text("# a new model\n")
    assert revision().endswith("+dirty")


def test_a_result_no_disk_takes_is_printed_not_lost(tmp_path, capsys, monkeypatch):
    import json

    import utils.plumbing.run

    def refuse(args, record, identity):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(utils.plumbing.run, "write_record", refuse)
    assert main.main(SHORT + ["--results_path", str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert json.loads(err[0])["model"] == SHORT[SHORT.index("--model") + 1]
    assert "could not write the run's result anywhere (No space left on device)" in err[1]


@pytest.mark.parametrize("flags", [["--model", "der", "--mask", "las", "--buffer_size", "20"],
                                   ["--model", "er_ace", "--buffer_size", "20", "--levers", "auto"],
                                   ["--model", "xder", "--buffer_size", "20", "--calibration", "bic"]])
def test_no_module_writes_a_runs_flags_after_parsing(tmp_path, flags):
    """parse_args resolves every flag and freezes them; the levers --levers auto measures go into a copy."""
    from utils.plumbing.run import train_to_record
    from utils.plumbing.signals import StopSignals

    args, model_cls, dataset_cls = parse_args(flags + ["--n_epochs", "1", "--quiet", "--data_path",
                                                       str(tmp_path), "--results_path", str(tmp_path)])
    parsed = dict(vars(args))
    with pytest.raises(AttributeError, match="frozen after parsing"):
        args.lr = 1.0
    record = train_to_record(args, model_cls, dataset_cls, StopSignals(), {"run_id": "r", "started_at": "t"})
    assert vars(args) == parsed
    if args.levers == "auto":
        assert record["args"]["channels_last"] is False and record["levers"]["choice"] == "fp32"


def test_a_closed_stdout_does_not_lose_the_run_and_no_bar_goes_into_a_pipe(tmp_path):
    """`python main.py ... | head`: the reader leaves before the run ends; the run finishes and writes its line."""
    process = subprocess.Popen([sys.executable, "main.py", "--model", "der", "--buffer_size", "20", "--results_path",
                                str(tmp_path / "results")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Task 1/5" not in err, err
    assert len(read_records(tmp_path / "results")) == 1
