"""utils/plumbing/environment.py and the device flags: bf16 refused on a CPU without native bf16 (capability faked
both ways, and checked against the CPU's flags), FWT and future rows exactly with --eval_future,
channels_last by default where it pays, the environment fields of a results line."""
import pytest

import main
import utils.speed.device
from tests.helpers import run_main
from utils.plumbing.cli import parse_args


@pytest.mark.parametrize("native", [False, True])
def test_amp_on_the_cpu_follows_the_native_bf16_capability(monkeypatch, capsys, native):
    monkeypatch.setattr(utils.speed.device, "cpu_has_native_bf16", lambda: native)
    argv = ["--model", "sgd", "--amp", "--device", "cpu"]
    if native:
        args, _, _ = parse_args(argv)
        assert args.amp == "bf16"
        return
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "--amp" in err and "no native bf16" in err and "10x slower" in err and "drop --amp" in err


def test_capability_agrees_with_the_cpu_flags():
    """Native bf16 is AVX-512 BF16 or AMX-BF16 in the kernel's CPU flags (an x86 Linux machine)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no x86 CPU flags in /proc/cpuinfo")
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert utils.speed.device.cpu_has_native_bf16() == native


def test_future_rows_and_fwt_exactly_with_eval_future(tmp_path):
    plain = run_main(tmp_path / "plain", "--model", "er", "--buffer_size", "20", "--n_epochs", "1")
    full = run_main(tmp_path / "full", "--model", "er", "--buffer_size", "20", "--n_epochs", "1", "--eval_future")
    for setting in ("class_il", "task_il"):
        lower, square = plain[setting]["matrix"], full[setting]["matrix"]
        assert all(v is None for i, row in enumerate(lower) for v in row[i + 1:])
        assert all(v is not None for row in square for v in row)
        assert [row[:i + 1] for i, row in enumerate(lower)] == [row[:i + 1] for i, row in enumerate(square)]
        assert plain[setting]["fwt"] is None and isinstance(full[setting]["fwt"], float)
        assert plain[setting]["final_avg"] == full[setting]["final_avg"]


def test_table_says_why_fwt_is_missing(tmp_path, capsys):
    run_main(tmp_path, "--model", "er", "--buffer_size", "20", "--n_epochs", "1")
    assert "fwt: n/a, needs --eval_future" in capsys.readouterr().out


def test_channels_last_defaults():
    cifar = ["--model", "sgd", "--dataset", "seq-cifar10", "--device", "cpu"]
    assert parse_args(cifar)[0].channels_last is True
    assert parse_args(cifar + ["--nf", "8"])[0].channels_last is False
    assert parse_args(cifar + ["--no-channels_last"])[0].channels_last is False
    assert parse_args(["--model", "sgd"])[0].channels_last is False


def test_narrow_channels_last_on_the_cpu_is_refused(capsys):
    with pytest.raises(SystemExit):
        main.main(["--model", "sgd", "--dataset", "seq-cifar10", "--nf", "8", "--channels_last", "--device", "cpu"])
    assert "--channels_last" in capsys.readouterr().err


def test_results_line_records_its_environment(tmp_path):
    env = run_main(tmp_path, "--model", "sgd", "--n_epochs", "1")["environment"]
    for name in ("python", "torch", "torchvision", "kornia", "numpy", "cpu"):
        assert isinstance(env[name], str) and env[name]
    assert isinstance(env["cpu_native_bf16"], bool) and isinstance(env["torch_threads"], int)
    assert env["gpu"] is None and env["cuda"] is None
