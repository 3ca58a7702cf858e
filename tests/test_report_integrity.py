"""A table counts exactly the runs it says: each run key once, duplicates and unreadable lines named,
conflicting lines refused, options that would do nothing refused, identifying columns always shown,
LaTeX that compiles."""
import csv
import io
import json
import shutil
import subprocess

import pytest

from tests.test_report import record
from utils import report
from utils.results_file import append_line, read_lines
from utils.study.tables import latex_escape


def write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return str(path)


def refused(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        report.main(list(argv))
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.err.count("\n") == 1 and captured.out == "", captured
    return captured.err


def table(capsys, *argv):
    assert report.main(list(argv)) == 0
    return capsys.readouterr()


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def der_runs(finals):
    return [record("der", "none", None, seed, final) for seed, final in enumerate(finals)]


def test_a_repeated_run_counts_once_within_a_file_and_across_files(tmp_path, capsys):
    runs = der_runs([40.0, 44.0, 48.0])
    first = write(tmp_path / "a.jsonl", runs + [runs[0]])
    second = write(tmp_path / "b.jsonl", [runs[1], runs[2]])
    out = table(capsys, first, second, "--format", "csv")
    assert csv_rows(out.out)[0]["n"] == "3"
    assert "dropped 3 duplicate lines" in out.err
    assert f"{first}:4 (= {first}:1)" in out.err and f"{second}:1 (= {first}:2)" in out.err
    markdown = table(capsys, first, second).out
    assert "44.00 ± 4.00" in markdown and "3 runs in 1 group" in markdown


def test_lines_of_one_key_with_other_results_are_refused_or_the_first_kept(tmp_path, capsys):
    runs = der_runs([40.0, 44.0])
    other = {**runs[0], "class_il": {**runs[0]["class_il"], "final_avg": 99.0}}
    path = write(tmp_path / "r.jsonl", runs + [other])
    err = refused(capsys, path)
    assert "repeats a run key with other results" in err and f"{path}:3 (= {path}:1)" in err
    assert "--conflicts first" in err and "seed 0" in err
    kept = table(capsys, path, "--conflicts", "first", "--format", "csv")
    assert "kept the earliest line" in kept.err
    row = csv_rows(kept.out)[0]
    assert row["n"] == "2" and float(row["class_il_final_avg_mean"]) == pytest.approx(42.0)


def test_unreadable_lines_are_named_by_file_and_line(tmp_path, capsys):
    runs = der_runs([40.0, 44.0])
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(runs[0]) + "\nnot json at all\n" + json.dumps({"model": "der"}) + "\n"
                    + json.dumps(runs[1]) + "\n" + '{"model": "der", "ar')
    out = table(capsys, str(path))
    assert f"3 lines could not be read and are not in the tables: {path}: 3 lines (2, 3, 5 torn)" in out.err
    assert "2 runs in 1 group" in out.out


def test_an_empty_file_says_it_is_empty(tmp_path, capsys):
    empty = tmp_path / "results.jsonl"
    empty.write_text("")
    assert "is empty" in refused(capsys, str(empty))


@pytest.mark.parametrize("argv,words", [
    (["--baseline", "mask=balanced"], ("--baseline", "mask=balanced", "none")),
    (["--baseline", "foo=bar"], ("--baseline", "'foo' is not a flag of any run",)),
    (["--ignore", "bogus_flag"], ("--ignore", "'bogus_flag' is not a flag of any run")),
    (["--where", "bogus=1"], ("--where", "'bogus' is not a flag of any run")),
    (["--where", "buffer_sise=20"], ("did you mean 'buffer_size'",)),
    (["--format", "csv", "--pivot"], ("--pivot", "--format csv")),
    (["--pivot", "--baseline", "mask=none"], ("--baseline", "--pivot")),
    (["--ignore", "seed"], ("seed",)),
])
def test_report_options_that_would_do_nothing_are_refused(tmp_path, capsys, argv, words):
    path = write(tmp_path / "r.jsonl", der_runs([40.0, 44.0]) + [record("der", "ninf", None, 0, 50.0)])
    err = refused(capsys, path, *argv)
    for word in words:
        assert word in err, err


def test_csv_with_a_baseline_has_the_difference_and_p(tmp_path, capsys):
    runs = der_runs([40.0, 44.0, 48.0]) + [record("der", "ninf", None, s, f) for s, f in enumerate([50.0, 53.0])]
    rows = table(capsys, write(tmp_path / "r.jsonl", runs), "--format", "csv", "--baseline", "mask=none").out
    by_mask = {row["mask"]: row for row in csv_rows(rows)}
    assert by_mask["none"]["class_il_delta"] == "baseline" and by_mask["none"]["p_welch"] == ""
    assert float(by_mask["ninf"]["class_il_delta"]) == pytest.approx(51.5 - 44.0)
    assert 0 < float(by_mask["ninf"]["p_welch"]) < 1


def test_model_dataset_and_mask_are_always_shown(tmp_path, capsys):
    out = table(capsys, write(tmp_path / "r.jsonl", der_runs([40.0]))).out
    header = out.splitlines()[0]
    for column in ("model", "dataset", "mask", "buffer_size"):
        assert f" {column} " in header
    assert "| der     | seq-digits | none   | 20" in out
    assert "| 40.00 " in out  # n = 1: the same two decimals as every other cell
    assert "1 run in 1 group" in out


def test_pivot_over_merged_buffer_sizes_has_no_buffer_none(tmp_path, capsys):
    runs = der_runs([40.0]) + [record("der", "none", None, 1, 44.0, buffer_size=200)]
    out = table(capsys, write(tmp_path / "r.jsonl", runs), "--pivot", "--ignore", "buffer_size").out
    assert "buffer None" not in out and "| Class-IL " in out and "(n=2)" in out


def test_latex_escapes_what_latex_needs():
    assert latex_escape("mask_value") == r"mask\_value"
    assert latex_escape("50% & #1 {x} ~ ^ \\") == r"50\% \& \#1 \{x\} \textasciitilde{} \textasciicircum{} " \
                                                   r"\textbackslash{}"
    assert latex_escape("44.00 $\\pm$ 4.00") == "44.00 $\\pm$ 4.00"
    assert latex_escape("Δ Class-IL ±") == r"$\Delta$ Class-IL $\pm$"


def latex_table(tmp_path, capsys):
    runs = der_runs([40.0, 44.0]) + [record("der", "general", -3.0, s, f) for s, f in enumerate([50.0, 53.0])]
    path = write(tmp_path / "r.jsonl", runs)
    return table(capsys, path, "--format", "latex", "--baseline", "mask=none").out.split("\n\n")[0]


def test_latex_headers_are_escaped(tmp_path, capsys):
    latex = latex_table(tmp_path, capsys)
    assert r"mask\_value" in latex and r"buffer\_size" in latex and "$\\Delta$" in latex
    body = latex.replace("\\_", "").replace("\\&", "").replace("\\%", "")
    assert "_" not in body and "Δ" not in body and "±" not in body


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_table_compiles(tmp_path, capsys):
    latex = latex_table(tmp_path, capsys)
    document = tmp_path / "table.tex"
    document.write_text("\\documentclass{article}\n\\begin{document}\n" + latex + "\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "table.pdf").is_file()


def test_plots_to_a_file_or_under_a_file_is_refused_before_any_table(tmp_path, capsys):
    path = write(tmp_path / "r.jsonl", der_runs([40.0, 44.0]))
    for target in (path, f"{path}/plots"):
        err = refused(capsys, path, "--plots", target)
        assert "--plots" in err and "is a file, not a folder" in err


def test_a_torn_tail_is_set_aside_and_the_next_record_starts_a_fresh_line(tmp_path):
    runs = der_runs([40.0, 44.0, 48.0])
    path = tmp_path / "results.jsonl"
    write(path, runs[:1], tail=json.dumps(runs[1])[:50])
    note = append_line(str(path), runs[2])
    assert "torn line" in note and (tmp_path / "results.jsonl.torn").read_text() == json.dumps(runs[1])[:50] + "\n"
    lines, bad = read_lines([str(path)])
    assert [line.record["seed"] for line in lines] == [0, 2] and not bad
    whole = tmp_path / "whole.jsonl"
    write(whole, runs[:1], tail=json.dumps(runs[1]))  # a whole record that lost only its newline
    assert "added one" in append_line(str(whole), runs[2])
    assert [line.record["seed"] for line in read_lines([str(whole)])[0]] == [0, 1, 2]
    assert append_line(str(whole), runs[0]) is None
