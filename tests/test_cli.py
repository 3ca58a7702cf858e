"""Help output and bad input: one line on stderr naming flag and value, exit 2, nothing written."""
import subprocess
import sys

import pytest

import main
from tests.conftest import ROOT
from tests.helpers import read_records, run_cli

BAD_INPUTS = [
    (["--model", "bogus"], "--model", "bogus"),
    (["--model", "er", "--dataset", "seq-bogus", "--buffer_size", "5"], "--dataset", "seq-bogus"),
    (["--model", "er", "--mask", "bogus", "--buffer_size", "5"], "--mask", "bogus"),
    (["--model", "er"], "--buffer_size", "0"),
    (["--model", "der", "--buffer_size", "0"], "--buffer_size", "0"),
    (["--model", "er", "--buffer_size", "-5"], "--buffer_size", "-5"),
    (["--model", "sgd", "--batch_size", "0"], "--batch_size", "0"),
    (["--model", "sgd", "--n_epochs", "-1"], "--n_epochs", "-1"),
    (["--model", "er", "--buffer_size", "5", "--minibatch_size", "0"], "--minibatch_size", "0"),
    (["--model", "sgd", "--lr", "0"], "--lr", "0"),
    (["--model", "sgd", "--lr", "nan"], "--lr", "nan"),
    (["--model", "sgd", "--mask_value", "nan"], "--mask_value", "nan"),
    (["--model", "sgd", "--mask_value", "inf"], "--mask_value", "inf"),
    (["--model", "der", "--buffer_size", "5", "--alpha", "-1"], "--alpha", "-1"),
    (["--model", "sgd", "--dataset", "seq-cifar10", "--nf", "0"], "--nf", "0"),
    (["--model", "sgd", "--device", "tpu"], "--device", "tpu"),
    (["--model", "sgd", "--data_path", "main.py"], "--data_path", "main.py"),
]


@pytest.mark.parametrize("argv,flag,value", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("main.py: error:")
    assert flag in err and value in err
    assert not (tmp_path / "results").exists()


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    for argv, expected in ((["--model", "bogus"], ("bogus", "derpp", "sgd")),
                           (["--model", "sgd", "--mask_value", "nan"], ("--mask_value", "'nan'", "-inf"))):
        result = run_cli(*argv, "--results_path", str(tmp_path))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
        assert all(word in result.stderr for word in expected)
    assert read_records(tmp_path) == []


def test_help_lists_registered_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("der", "derpp", "er", "joint", "sgd", "seq-digits", "seq-mnist", "seq-cifar10",
                 "balanced", "general", "ninf", "stopgrad", "--mask_value", "--mask_buffer", "--buffer_size"):
        assert name in out
    assert "--alpha" not in out


def test_model_help_shows_its_flags(capsys):
    with pytest.raises(SystemExit):
        main.main(["--model", "derpp", "--dataset", "seq-cifar10", "--help"])
    out = capsys.readouterr().out
    assert "model derpp" in out and "--alpha" in out and "--beta" in out and "--nf" in out


def test_main_run_prints_progress_and_table(tmp_path):
    result = run_cli("--model", "der", "--mask", "general", "--buffer_size", "20", "--n_epochs", "1",
                     "--results_path", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Task 5/5" in result.stdout and "Class-IL" in result.stdout
    for metric in ("final_avg", "forgetting", "bwt", "fwt", "plasticity", "stability"):
        assert metric in result.stdout
    assert len(read_records(tmp_path)) == 1


def test_bare_help_imports_no_torch():
    code = ("import sys, main\ntry:\n    main.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
