"""python -m utils.reproduce: the verdict rule on hand-made results (a paper with std and one without, a cell that
agrees and one that differs), every table's --dry_run counts its runs, the S-MNIST stand-in end to end on 2 seeds of
one buffer with its caveat on every line, bad input as one line; and the report's published column in each format."""
import csv
import io
import json

import pytest
from scipy import stats

from tests.helpers import read_records
from utils import report, reproduce
from utils.study.reproduction import verdict


def test_the_verdict_rule_with_and_without_the_papers_std():
    close, far = [84.0, 85.0, 86.0, 84.5, 85.5], [70.0, 71.0, 72.0, 70.5, 71.5]
    agrees = verdict(close, 84.55, 1.0, 10)
    expected = stats.ttest_ind_from_stats(85.0, stats.tstd(close), 5, 84.55, 1.0, 10, equal_var=False).pvalue
    assert agrees.agrees and agrees.p == pytest.approx(expected) and "agrees (Welch p" in agrees.text()
    assert not verdict(far, 84.55, 1.0, 10).agrees
    inside, outside = verdict(close, 84.55), verdict(close, 90.0)  # means only: the suite's 95 % interval
    low, high = stats.t.interval(0.95, 4, loc=85.0, scale=stats.sem(close))
    assert inside.agrees and inside.interval == pytest.approx((low, high)) and not outside.agrees
    assert "outside the 95% interval" in outside.text() and verdict([85.0], 84.55).agrees is None


@pytest.mark.parametrize("table,runs", [("der-table2-cifar10", 100), ("der-table2-tinyimg", 70), ("der-smnist", 190),
                                        ("xder-table1-cifar100", 110)])
def test_every_tables_dry_run_counts_its_runs(tmp_path, capsys, table, runs):
    assert reproduce.main([table, "--dry_run", "--no_estimate", "--results_path", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{runs} runs, 0 already in")


def test_the_smnist_stand_in_end_to_end_with_its_caveat_and_estimate(tmp_path, capsys):
    out = tmp_path / "repro"
    argv = ["der-smnist", "--stand_in", "seq-mnist-5k", "--seeds", "2", "--buffers", "200", "--results_path", str(out),
            "--models", "sgd", "er", "der", "derpp"]
    assert reproduce.main(argv + ["--dry_run"]) == 0
    dry = capsys.readouterr().out
    assert "8 runs" in dry and "cost estimate:" in dry and "seq-mnist-5k: 4,000 training images" in dry
    assert reproduce.main(argv) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "model" not in line]
    assert len(rows) == 4 and all("5,000 MNIST images, not the paper's 60,000" in row for row in rows)
    der = next(row for row in rows if row.startswith("| der "))
    records = [r for r in read_records(out) if r["model"] == "der"]
    assert len(records) == 2 and all(r["args"]["alpha"] == 0.2 and r["args"]["lr"] == 0.03 for r in records)
    mean = sum(r["class_il"]["final_avg"] for r in records) / 2
    assert "84.55" in der and f"{mean:.2f}" in der and f"{mean - 84.55:+.2f}" in der and "(n=2)" in der
    with open(out / "results.jsonl", "a", encoding="utf-8") as f:  # a run of another protocol is left out
        f.write(json.dumps({**records[0], "key_hash": "other", "args": {**records[0]["args"], "config": None}}) + "\n")
    assert reproduce.main(argv) == 0
    assert "1 run of the results file left out: another protocol" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["der-smnst"], "did you mean 'der-smnist'?"),
    (["der-smnist"], "downloads it; offline, --stand_in seq-mnist-5k runs it on a stand-in"),
    (["der-table2-cifar10", "--stand_in", "seq-mnist-5k"], "is not allowed for der-table2-cifar10: it has none"),
    (["der-smnist", "--buffers", "100"], "der-smnist has buffers 200, 500, 5120"),
    (["der-smnist", "--models", "gss"], "der-smnist has models sgd, ewc_on, si, lwf, er, agem, icarl, der, derpp")])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(argv + ["--data_path", str(tmp_path / "nothing"), "--results_path", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


def test_the_report_sets_the_papers_figure_beside_a_published_configuration(tmp_path, capsys):
    lines = [{"model": "der", "mask": "none", "mask_value": None, "buffer_size": 200, "seed": seed,
              "args": {"model": "der", "dataset": "seq-mnist-5k", "buffer_size": 200, "config": "best", "seed": seed,
                       "mask": "none", "lr": 0.03},
              "class_il": {"final_avg": 80.0 + seed, "forgetting": 1, "bwt": 1, "fwt": None, "matrix": [[1.0]]},
              "task_il": {"final_avg": 95.0}} for seed in range(2)]
    lines.append({**lines[0], "args": {**lines[0]["args"], "config": None, "seed": 0}})
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert report.main([str(path), "--published"]) == 0
    out = capsys.readouterr().out
    assert "paper Class-IL" in out and "84.55 (DER release, on seq-mnist)" in out
    assert report.main([str(path), "--published", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["paper_class_il"] for r in rows) == ["", "84.55 (DER release, on seq-mnist)"]
    assert report.main([str(path), "--published", "--format", "latex"]) == 0
    assert "84.55 (DER release, on seq-mnist)" in capsys.readouterr().out
