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
    (["--model", "sgd", "--log_dir", "main.py"], "--log_dir", "main.py"),
    (["--model", "sgd", "--log_dir", "main.py/events"], "--log_dir", "main.py"),
    (["--model", "sgd", "--log_every", "0"], "--log_every", "0"),
    (["--model", "sgd", "--threads", "0"], "--threads", "0"),
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


# refusals of bad flags and values

@pytest.mark.parametrize("spelling", ["-inf", "-Infinity", "-INF", "-infinity", "-iNfInItY"])
def test_every_float_spelling_of_minus_infinity_is_a_mask_value(spelling):
    args, _, _ = main.parse_args(["--model", "sgd", "--mask", "general", "--mask_value", spelling])
    assert args.mask_value == float("-inf")


REFUSED_AS_SILENT = [
    (["--model", "sgd", "--mask", "none", "--mask_value", "5"],
     ("--mask_value", "5.0", "mask none", "general, stopgrad")),
    (["--model", "er_ace", "--buffer_size", "5", "--mask_value", "-1"], ("--mask_value", "mask ninf")),
    (["--model", "sgd", "--mask", "balanced", "--mask_value", "0"], ("--mask_value", "mask balanced")),
    (["--model", "sgd", "--buffer_size", "20"], ("--buffer_size", "20", "model sgd has no buffer", "der")),
    (["--model", "joint", "--buffer_size", "5"], ("--buffer_size", "model joint has no buffer")),
    (["--model", "der", "--buffer_size", "20", "--minibatch_size", "30"], ("--minibatch_size", "30", "at most")),
    (["--model", "er", "--buffer_size", "5", "--alpha", "0.5"],
     ("--alpha", "model er", "models der, derpp, derppmr, lwf, orthderppmr, xder")),
    (["--model", "sgd", "--nf", "20"], ("--nf", "dataset seq-digits", "seq-cifar10", "seq-tinyimg")),
    (["--model", "sgd", "--lambd=0.1"], ("--lambd", "model xder")),
    (["--model", "derr"], ("--model", "'derr'", "did you mean 'der'")),
    (["--model", "DER", "--buffer_size", "5"], ("--model", "did you mean 'der'")),
    (["--model", "sgd", "--mask", "genral"], ("--mask", "did you mean 'general'")),
    (["--model", "sgd", "--dataset", "seq-cifar"], ("--dataset", "did you mean 'seq-cifar10'")),
    (["--model", "sgd", "--buffr_size", "5"], ("--buffr_size", "did you mean '--buffer_size'")),
]


@pytest.mark.parametrize("argv,words", REFUSED_AS_SILENT)
def test_flags_that_would_do_nothing_are_refused_with_the_owners(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "results").exists()


def test_minibatch_defaults_to_what_the_buffer_can_give():
    args, _, _ = main.parse_args(["--model", "der", "--buffer_size", "5"])
    assert args.batch_size == 10 and args.minibatch_size == 5
    args, _, _ = main.parse_args(["--model", "sgd"])
    assert args.minibatch_size is None and args.mask_value is None


def help_of(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_bare_help_describes_every_model_and_mask(capsys):
    from models import MODELS
    from utils.core.masks import MASKS
    out = help_of(capsys)
    for registry in (MODELS, MASKS):
        for name in registry.names():
            description = " ".join(registry.describe(name).split())
            assert description and f"{name} {description[:40]}" in out, name


def test_model_help_shows_default_mask_description_and_every_default(capsys):
    out = help_of(capsys, "--model", "er_ace")
    assert "model er_ace" in out and "ER-ACE (Caccia et al. 2022)" in out
    assert "Default mask: ninf, scope ace" in out and "--task_free" in out
    out = help_of(capsys, "--model", "der")
    assert "--alpha ALPHA weight α of the logit MSE (default: 0.3" in out
    assert "--compile torch.compile the backbone (default: off)" in out
    assert "--checkpoint_dir CHECKPOINT_DIR" in out and "(default: none)" in out


def test_mask_help_works_as_the_epilog_promises(capsys):
    out = help_of(capsys, "--model", "sgd", "--mask", "stopgrad")
    assert "--mask NAME --help" in out and "mask stopgrad" in out and "ẑ_j = sg(z_j) + m" in out


def test_the_parser_as_a_library_raises_a_typed_error(capsys):
    from utils.plumbing.cli import parse_args
    from utils.plumbing.parser import FlagError
    with pytest.raises(FlagError, match="argument --alpha: not a flag of model er"):
        parse_args(["--model", "er", "--alpha", "0.3", "--buffer_size", "20"], raise_errors=True)
    with pytest.raises(FlagError, match="--mask_value"):
        parse_args(["--model", "der", "--mask", "none", "--mask_value", "-3", "--buffer_size", "20"], raise_errors=True)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("old,new", [("--m", "--margin"), ("--non_verbose", "--quiet")])
def test_a_renamed_flag_is_refused_naming_its_new_name(tmp_path, capsys, old, new):
    argv = ["--model", "xder", "--buffer_size", "20", old] + (["0.3"] if old == "--m" else [])
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and f"argument {old}: renamed {new}" in err
