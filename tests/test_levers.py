"""--levers auto: the choice comes from timing the model's own step, never changes what the run draws (the
same accuracy matrix as the chosen levers given by hand), is said and recorded; the flags it chooses are
refused beside it; old results keep their keys."""
import pytest

from tests.helpers import run_main
from tests.test_datasets import write_cifar10
from utils.plumbing.cli import parse_args
from utils.plumbing.identity import flags_key, run_key
from utils.speed.levers import eager_candidates

TINY_CIFAR = ["--dataset", "seq-cifar10", "--nf", "16", "--n_epochs", "1", "--batch_size", "8", "--threads", "1"]


def test_the_auto_choice_gives_the_run_of_the_chosen_levers_by_hand(tmp_path, capsys):
    write_cifar10(tmp_path / "data", per_file=40)
    auto = run_main(tmp_path, "--model", "der", "--buffer_size", "16", "--levers", "auto", *TINY_CIFAR)
    levers = auto["levers"]
    assert set(levers["step_ms"]) == {"fp32", "cl"} and levers["choice"] in levers["step_ms"]
    assert f"levers auto: {levers['choice']}" in capsys.readouterr().out
    by_hand = run_main(tmp_path, "--model", "der", "--buffer_size", "16", *TINY_CIFAR,
                       "--channels_last" if levers["choice"] == "cl" else "--no-channels_last")
    assert by_hand["levers"] is None
    assert auto["class_il"]["matrix"] == by_hand["class_il"]["matrix"]
    assert auto["args"]["channels_last"] == by_hand["args"]["channels_last"]


def test_bf16_is_a_candidate_only_when_allowed_and_native(monkeypatch):
    import utils.speed.device

    args, _, dataset_cls = parse_args(["--model", "der", "--buffer_size", "10", "--dataset", "seq-cifar10",
                                       "--levers", "auto-bf16", "--device", "cpu"])
    monkeypatch.setattr(utils.speed.device, "cpu_has_native_bf16", lambda: False)
    assert set(eager_candidates(args, dataset_cls)) == {"fp32", "cl"}
    monkeypatch.setattr(utils.speed.device, "cpu_has_native_bf16", lambda: True)
    assert set(eager_candidates(args, dataset_cls)) == {"fp32", "cl", "bf16", "bf16+cl"}
    assert set(eager_candidates(args.replaced(levers="auto"), dataset_cls)) == {"fp32", "cl"}
    mlp, _, mlp_cls = parse_args(["--model", "der", "--buffer_size", "10", "--levers", "auto"])
    assert set(eager_candidates(mlp, mlp_cls)) == {"fp32"}


@pytest.mark.parametrize("flag", ["--amp", "--channels_last", "--no-channels_last", "--compile"])
def test_a_lever_given_beside_auto_is_refused_in_one_line(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--model", "er", "--buffer_size", "10", "--levers", "auto", flag])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--levers" in err and flag.split("-")[-1] in err


def test_old_results_keep_their_keys_and_auto_keys_leave_out_the_chosen_levers():
    args, _, _ = parse_args(["--model", "er", "--buffer_size", "10"])
    before_the_flag = {name: value for name, value in vars(args).items() if name != "levers"}
    assert run_key(args) == flags_key(before_the_flag)
    auto, _, _ = parse_args(["--model", "er", "--buffer_size", "10", "--levers", "auto"])
    key = run_key(auto)
    assert key["levers"] == "auto" and not {"amp", "channels_last", "compile"} & set(key)


def fake_trials(monkeypatch, timings):
    """time_steps replaced by fixed (median s, other s) per lever name; an exception is raised as given."""
    import utils.speed.levers

    def fake(args, lever, model_cls, dataset):
        outcome = timings[utils.speed.levers.lever_name(lever)]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    monkeypatch.setattr(utils.speed.levers, "time_steps", fake)


@pytest.mark.parametrize("compiled,expected", [((0.010, 20.0), "compile+cl"), ((0.010, 400.0), "cl"),
                                               (RuntimeError("no C++ compiler"), "cl")])
def test_compile_is_taken_only_where_its_saving_over_the_run_beats_its_cost(monkeypatch, compiled, expected):
    import utils.speed.levers

    args, model_cls, dataset_cls = parse_args(["--model", "der", "--buffer_size", "10", "--dataset", "seq-cifar10",
                                               "--levers", "auto", "--device", "cpu", "--n_epochs", "50"])
    dataset = dataset_cls(args)
    monkeypatch.setattr(utils.speed.levers, "run_steps", lambda *a: 20_000)  # × 0.02 s = 400 s of steps
    monkeypatch.setattr(utils.speed.levers, "COMPILE_AFTER_S", 100)
    fake_trials(monkeypatch, {"fp32": (0.030, 1.0), "cl": (0.020, 1.0), "compile+cl": compiled})
    chosen, levers = utils.speed.levers.choose_levers(args, model_cls, dataset)
    assert levers["choice"] == expected and ("compile_error" in levers) == isinstance(compiled, Exception)
    assert chosen["compile"] == (expected == "compile+cl") and chosen["channels_last"]
    assert not args.compile  # the flags stay as parsed: the run trains with a copy


def test_a_run_under_joint_counts_the_seen_tasks_steps():
    from types import SimpleNamespace

    from utils.speed.levers import run_steps
    dataset = SimpleNamespace(splits=SimpleNamespace(train_labels=range(1000)), N_TASKS=5)
    args = SimpleNamespace(n_epochs=2, batch_size=100)
    assert run_steps(args, SimpleNamespace(TRAINS_ON_SEEN_TASKS=False), dataset) == 2 * 5 * 2
    assert run_steps(args, SimpleNamespace(TRAINS_ON_SEEN_TASKS=True), dataset) == 2 * (2 + 4 + 6 + 8 + 10)


def test_a_checkpoints_levers_that_this_device_cannot_run_are_dropped(monkeypatch):
    from types import SimpleNamespace

    import utils.speed.device
    import utils.speed.levers
    monkeypatch.setattr(utils.speed.device, "cpu_has_native_bf16", lambda: False)
    args = SimpleNamespace(device="cpu", amp="bf16", channels_last=True, compile=False, nf=8)
    assert utils.speed.levers.usable_here(args) == ({"amp": None, "channels_last": False, "compile": False},
                                              ["amp", "channels_last"])
    wide = SimpleNamespace(device="cpu", amp=None, channels_last=True, compile=False, nf=20)
    assert utils.speed.levers.usable_here(wide) == ({"amp": None, "channels_last": True, "compile": False}, [])
