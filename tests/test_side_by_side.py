"""python -m utils.study.side_by_side: Mammoth's logs (Python-literal dicts with numpy scalars, one per run) and
the suite's results lines, per task and as an effect of one model against another, checked by hand."""
import numpy as np
import pytest

from tests.helpers import read_records, run_main
from utils.study import side_by_side


def write_mammoth(root, model, seeds_means, dataset="seq-digits"):
    for setting in ("class-il", "task-il"):
        folder = root / setting / dataset / model
        folder.mkdir(parents=True)
        with open(folder / "logs.pyd.pyd", "w") as f:
            for seed, means in seeds_means.items():
                entries = ", ".join(f"'accmean_task{t + 1}': np.float64({m})" for t, m in enumerate(means))
                f.write(f"{{'seed': {seed}, 'model': '{model}', {entries}, 'accuracy_1_task1': 50.0, "
                        f"'device': device(type='cpu')}}\n")  # as a run on the CPU writes it


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suite")
    for model in ("er", "ermr"):
        for seed in ("0", "1"):
            run_main(tmp, "--model", model, "--buffer_size", "20", "--seed", seed, "--batch_size", "100")
    return tmp / "results" / "results.jsonl"


def test_the_tables_and_the_effect_match_a_computation_by_hand(tmp_path, suite, capsys):
    write_mammoth(tmp_path, "er", {0: [90, 40, 30, 20, 10], 1: [92, 42, 32, 22, 14]})
    write_mammoth(tmp_path, "ermr", {0: [91, 50, 40, 30, 20], 1: [93, 52, 44, 34, 26]})
    assert side_by_side.main(["--mammoth", str(tmp_path), "--suite", str(suite), "--dataset", "seq-digits",
                              "--models", "er", "ermr", "--effect", "ermr:er"]) == 0
    out = capsys.readouterr().out
    assert "er: Mammoth seeds [0, 1], suite seeds [0, 1]" in out
    assert "| er      | 5            | 12.00 ± 2.83" in out
    finals = {model: [np.mean(r["class_il"]["matrix"][-1]) for r in read_records(suite.parent) if r["model"] == model]
              for model in ("er", "ermr")}
    suite_effect = np.mean(finals["ermr"]) - np.mean(finals["er"])
    effect_line = next(line for line in out.splitlines() if "ermr − er" in line and "class-il" in line)
    cells = [c.strip() for c in effect_line.strip("|").split("|")]
    assert cells[2] == "+11.00" and cells[4] == f"{suite_effect:+.2f}"


def test_a_model_missing_on_one_side_is_one_line(tmp_path, suite, capsys):
    write_mammoth(tmp_path, "er", {0: [90, 40, 30, 20, 10]})
    with pytest.raises(SystemExit) as exit_info:
        side_by_side.main(["--mammoth", str(tmp_path), "--suite", str(suite), "--dataset", "seq-digits",
                           "--models", "er", "ermr"])
    assert exit_info.value.code == 2 and "no Mammoth run of ermr on seq-digits" in capsys.readouterr().err


def test_two_mammoth_runs_of_one_seed_are_refused_in_one_line(tmp_path, suite, capsys):
    write_mammoth(tmp_path, "er", {0: [90, 40, 30, 20, 10]})
    with open(tmp_path / "class-il" / "seq-digits" / "er" / "logs.pyd.pyd", "a") as f:
        f.write("{'seed': 0, 'accmean_task1': np.float64(1.0)}\n")
    with pytest.raises(SystemExit) as exit_info:
        side_by_side.main(["--mammoth", str(tmp_path), "--suite", str(suite), "--dataset", "seq-digits",
                           "--models", "er"])
    assert exit_info.value.code == 2 and "two runs of er with seed 0" in capsys.readouterr().err


def test_the_suite_may_name_the_same_data_otherwise(tmp_path, suite, capsys):
    write_mammoth(tmp_path, "er", {0: [90, 40, 30, 20, 10], 1: [92, 42, 32, 22, 14]}, dataset="seq-mnist")
    assert side_by_side.main(["--mammoth", str(tmp_path), "--suite", str(suite), "--dataset", "seq-mnist",
                              "--suite_dataset", "seq-digits", "--models", "er"]) == 0
    assert "| er      | 5            | 12.00 ± 2.83" in capsys.readouterr().out
