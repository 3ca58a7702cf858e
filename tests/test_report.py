"""utils/report.py: groups, means, sample stds and Welch p-values against hand computation; pivot, formats
and filters; plots written as non-blank PNGs of the expected size; each run key counted once, duplicate and
unreadable lines named, conflicting lines refused, options that would do nothing refused, identifying
columns always shown, LaTeX that compiles; the results file's torn-tail repair."""
import csv
import io
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from scipy import stats

from utils import report
from utils.plumbing.results_file import append_line, read_lines
from utils.study.tables import latex_escape

FINALS = {("der", "none", None): [40.0, 44.0, 48.0], ("der", "general", -3.0): [50.0, 53.0, 59.0],
          ("er", "none", None): [30.0, 31.0], ("er", "ninf", None): [35.0, 36.0]}


def record(model, mask, m, seed, final, buffer_size=20, lr=0.1):
    lower = [[90.0, None, None], [60.0, 80.0, None], [final, final, final]]
    summary = {"matrix": lower, "final_avg": final, "forgetting": 90.0 - final, "bwt": final - 85.0, "fwt": None,
               "plasticity": 85.0, "stability": 60.0}
    args = {"model": model, "mask": mask, "mask_value": m, "buffer_size": buffer_size, "seed": seed, "lr": lr,
            "dataset": "seq-digits", "device": "cpu", "results_path": f"elsewhere{seed}", "quiet": True}
    return {"model": model, "mask": mask, "mask_value": m, "buffer_size": buffer_size, "seed": seed, "args": args,
            "class_il": summary, "task_il": {**summary, "final_avg": final + 40}}


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "results.jsonl"
    lines = [record(model, mask, m, seed, final) for (model, mask, m), finals in FINALS.items()
             for seed, final in enumerate(finals)]
    lines.append(record("der", "none", None, 0, 10.0, lr=0.5))  # another lr: never merged
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    return str(path)


def csv_rows(capsys, *argv):
    assert report.main([*argv, "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_groups_mean_std_and_n_by_hand(results, capsys):
    rows = csv_rows(capsys, results)
    assert len(rows) == 5
    der_none = next(r for r in rows if r["model"] == "der" and r["mask"] == "none" and r["lr"] == "0.1")
    assert der_none["n"] == "3" and float(der_none["class_il_final_avg_mean"]) == pytest.approx(44.0)
    assert float(der_none["class_il_final_avg_std"]) == pytest.approx(4.0)  # sqrt(((−4)² + 0 + 4²) / 2)
    assert float(der_none["task_il_final_avg_mean"]) == pytest.approx(84.0)
    assert float(der_none["class_il_forgetting_mean"]) == pytest.approx(46.0)
    assert der_none["class_il_fwt_mean"] == ""
    lonely = next(r for r in rows if r["lr"] == "0.5")
    assert lonely["n"] == "1" and lonely["class_il_final_avg_std"] == ""


def student_t_tail(t, dof):
    """P(|T| > t) for Student's t with `dof` degrees of freedom, by integrating its density numerically
    (trapezoids on a log-spaced grid out to 10^6): a computation independent of scipy."""
    x = abs(t) + np.concatenate([[0.0], np.logspace(-8, 6, 400001)])
    scale = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)
    density = scale * (1 + x ** 2 / dof) ** (-(dof + 1) / 2)
    return 2 * float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))


def test_welch_difference_and_p_value_by_hand(results, capsys):
    assert report.main([results, "--where", "model=der", "lr=0.1", "--baseline", "mask=none"]) == 0
    out = capsys.readouterr().out
    # general m=-3: 50, 53, 59 (mean 54, variance 21); none: 40, 44, 48 (mean 44, variance 16)
    se2 = 21 / 3 + 16 / 3
    t = (54 - 44) / math.sqrt(se2)
    dof = se2 ** 2 / ((21 / 3) ** 2 / 2 + (16 / 3) ** 2 / 2)
    p = student_t_tail(t, dof)
    assert student_t_tail(2.0, 1e6) == pytest.approx(0.0455, abs=1e-4)  # the normal's two-sided tail at 2
    row = next(line for line in out.splitlines() if "general" in line)
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[-6] == "+10.00*" and float(cells[-3]) == pytest.approx(p, rel=1e-3) and p < 0.05
    assert float(cells[-2]) == pytest.approx(p, rel=1e-3)  # one test: Holm leaves p as it is
    low, high = (float(x) for x in cells[-5].strip("[]").split(","))
    half = (high - low) / 2
    assert (low + high) / 2 == pytest.approx(10) and half == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(se2),
                                                                            rel=1e-3)
    assert float(cells[-4]) == pytest.approx(10 / math.sqrt(18.5) * 0.8, abs=0.005)  # Hedges' g
    low, high = (float(x) for x in cells[-7].strip("[]").split(","))  # the mean's interval: 54 ± t(2)·√(21/3)
    assert (low + high) / 2 == pytest.approx(54) and (high - low) / 2 == pytest.approx(
        stats.t.ppf(0.975, 2) * math.sqrt(7), rel=1e-3)
    assert "p corrected by Holm over 1 test)" in out
    assert "baseline" in next(line for line in out.splitlines() if "| none" in line)
    assert "sample standard deviation (n−1)" in out


def test_p_values_are_corrected_over_the_tables_tests(results, capsys):
    """Two tests (DER general against none, ER ninf against none): Holm doubles the smaller p and takes the
    larger as it is unless the doubled one exceeds it; Benjamini-Hochberg takes the smaller times 2/1 unless the
    larger is lower; * follows the corrected p."""
    def p_columns(*flags):
        rows = csv_rows(capsys, results, "--where", "lr=0.1", "--baseline", "mask=none", *flags)
        return {r["model"]: (float(r["p_welch"]), float(r["p_corrected"])) for r in rows if r["p_welch"]}
    raw = {model: p for model, (p, _) in p_columns("--correction", "none").items()}
    small, large = sorted(raw.values())
    expected_holm = {model: (2 * small if p == small else max(large, 2 * small)) for model, p in raw.items()}
    expected_bh = {model: (min(2 * small, large) if p == small else large) for model, p in raw.items()}
    assert {m: c for m, (_, c) in p_columns().items()} == pytest.approx(expected_holm)
    assert {m: c for m, (_, c) in p_columns("--correction", "bh").items()} == pytest.approx(expected_bh)
    assert report.main([results, "--where", "lr=0.1", "--baseline", "mask=none", "--correction", "bh"]) == 0
    assert "p corrected by Benjamini–Hochberg over 2 tests)" in capsys.readouterr().out


def test_versus_sets_one_cure_beside_another_that_changes_other_flags(tmp_path, capsys):
    """general m = −3 (linear head) against fno (no mask): paired by model and buffer, the cure flags free."""
    lines = []
    for model, finals in (("der", ([50.0, 53.0, 59.0], [40.0, 44.0, 48.0])), ("er", ([35.0, 36.0], [30.0, 31.0]))):
        for (mask, m, head), values in zip((("general", -3.0, "linear"), ("none", None, "fno")), finals):
            for seed, final in enumerate(values):
                line = record(model, mask, m, seed, final)
                line["args"]["head"] = head
                lines.append(line)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert report.main([str(path), "--versus", "mask=general mask_value=-3", "head=fno"]) == 0
    out = capsys.readouterr().out
    der = [cell.strip() for cell in next(line for line in out.splitlines() if "| der" in line).split("|")]
    assert der[-8:-5] == ["54.00 ± 4.58 (n=3)", "44.00 ± 4.00 (n=3)", "+10.00*"]  # Holm: the larger p of 2 as is
    assert "from the head=fno group" in out and "over 2 tests" in out
    lines.append({**record("der", "none", None, 0, 45.0), "args": {**record("der", "none", None, 0, 45.0)["args"],
                                                                    "head": "fno", "calibration": "wa"}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(path), "--versus", "mask=general", "head=fno"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "has 2 groups of head=fno" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        report.main([str(path), "--versus", "mask=general", "head=fno", "--baseline", "mask=none"])
    assert "one layout at a time" in capsys.readouterr().err


def test_runs_whose_levers_auto_chose_differently_form_one_group(tmp_path, capsys):
    lines = []
    for seed, chosen in enumerate((True, False, True)):
        line = record("der", "none", None, seed, 40.0 + seed)
        line["args"].update(levers="auto", channels_last=chosen, amp=None, compile=False)
        lines.append(line)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = csv_rows(capsys, str(path))
    assert len(rows) == 1 and rows[0]["n"] == "3"


def test_misspelt_flags_and_values_get_the_closest_name(results, capsys):
    results = results.replace("results.jsonl", "clean.jsonl")
    with open(results, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record(model, mask, m, seed, final)) + "\n"
                     for (model, mask, m), finals in FINALS.items() for seed, final in enumerate(finals))
    assert "argument --basline: no such flag; did you mean '--baseline'?" in refused(capsys, results, "--basline",
                                                                                     "mask=none")
    assert "argument --where: no run has model=dre (model there: der, er); did you mean 'der'?" in refused(
        capsys, results, "--where", "model=dre")
    assert "did you mean 'ninf'?" in refused(capsys, results, "--baseline", "mask=nimf")
    assert "no runs match --where model=er mask=general together" in refused(capsys, results, "--where", "model=er",
                                                                             "mask=general")


def test_a_baseline_not_above_fine_tuning_is_flagged_and_the_floor_shown(tmp_path, capsys):
    """der without a mask at the floor (41, 42, 43 against sgd's 40, 42, 44: equal means, p 1), derpp well above it
    (60, 61, 62); the floor is found among all runs, --where notwithstanding."""
    runs = [record("sgd", "none", None, s, 40.0 + 2 * s) for s in range(3)]
    runs += [record("sgd", "ninf", None, s, 70.0 + s) for s in range(3)]  # a cure on fine-tuning: never the floor
    for model, base in (("der", 41.0), ("derpp", 60.0)):
        runs += [record(model, "none", None, s, base + s) for s in range(3)]
        runs += [record(model, "ninf", None, s, base + 10 + s) for s in range(3)]
    for run in runs:
        run["args"].update(n_epochs=1, batch_size=10)
    path = write(tmp_path / "r.jsonl", runs)
    out = table(capsys, path, "--where", "model=der,derpp", "--baseline", "mask=none", "--columns", "model").out
    cells = cells_of(out)
    assert cells["mask=none"] == ["42.00 ± 1.00 †", "61.00 ± 1.00"]
    assert cells["sgd (fine-tuning floor)"] == ["42.00 ± 2.00", "42.00 ± 2.00"]
    assert ("† baseline model=der dataset=seq-digits mask=none buffer_size=20: NOT above sgd 42.00 ± 2.00 (+0.00, p 1)"
            in out)
    rows = {r["model"]: r for r in csv_rows(capsys, path, "--where", "mask=none", "--baseline", "mask=none")}
    assert rows["derpp"]["baseline_health"].startswith("above sgd 42.00 ± 2.00 (+19.00, p 0.000")
    assert rows["sgd"]["baseline_health"] == "the fine-tuning floor itself"
    lonely = write(tmp_path / "lonely.jsonl", [run for run in runs if run["model"] != "sgd"])
    out = table(capsys, lonely, "--baseline", "mask=none", "--columns", "model").out
    assert "sgd (fine-tuning floor)" not in out and "baselines not checked against fine-tuning" in out


def test_ignore_merges_and_where_filters(results, capsys):
    rows = csv_rows(capsys, results, "--ignore", "lr", "--where", "model=der", "mask=none")
    assert len(rows) == 1 and rows[0]["n"] == "4" and "lr" not in rows[0]


def test_pivot_and_latex(results, capsys):
    assert report.main([results, "--pivot", "--where", "lr=0.1"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for column in ("model", "mask", "Class-IL (buffer 20)", "Task-IL (buffer 20)"):
        assert column in header
    assert "| der     | general (m=-3.0) | seq-digits | 54.00 ± 4.58 (n=3)" in out
    assert report.main([results, "--format", "latex", "--where", "lr=0.1"]) == 0
    latex = capsys.readouterr().out
    assert "\\begin{tabular}" in latex and "44.00 $\\pm$ 4.00" in latex


def test_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "missing.jsonl")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "missing.jsonl" in err


def test_plot_bands_stay_within_what_they_measure_and_switches_are_labelled():
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from utils.study.groups import Group
    from utils.study.plots import band, mark_switches

    figure, axis = plt.subplots()
    group = Group((("mask", '"none"'),), [])
    band(axis, np.arange(3), np.array([[99.0, 50.0, 1.0], [80.0, 50.0, 10.0]]), group)
    band(axis, np.arange(3), np.array([[0.5, 0.1, 0.0], [0.1, 0.1, 0.3]]), group, limits=(0, None))
    accuracy, mass = (collection.get_paths()[0].vertices[:, 1] for collection in axis.collections)
    assert accuracy.min() >= 0 and accuracy.max() == 100 and mass.min() == 0 and mass.max() > 0.3
    mark_switches(axis, [{"step": 0, "task": 0}, {"step": 5, "task": 0}, {"step": 10, "task": 1}])
    assert [text.get_text().strip() for text in axis.texts] == ["task 2"]
    plt.close(figure)


def test_plots_are_written_non_blank_pngs(results, tmp_path, capsys):
    from PIL import Image
    plots = tmp_path / "plots"
    assert report.main([results, "--where", "lr=0.1", "--plots", str(plots)]) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert sum(n.startswith("matrix-") for n in names) == 4 and "seen-tasks-seq-digits-buffer20.png" in names
    for name in names:
        with Image.open(plots / name) as image:
            assert image.format == "PNG" and image.width > 500 and image.height > 300
            pixels = np.asarray(image.convert("L"), dtype=float)
            assert pixels.std() > 10


def test_mask_value_plot_where_m_varies(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    lines = [record("der", "general", m, seed, 40.0 + m + seed) for m in (0.0, -1.0, -3.0) for seed in range(2)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert report.main([str(path), "--plots", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "mask-value-seq-digits-buffer20.png").is_file()


def test_recency_bias_old_gradient_mass_and_their_plots(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    lines = []
    for mask, scale in (("none", 1.0), ("ninf", 0.0)):
        for seed in range(2):
            line = record("der", mask, None, seed, 40.0 + seed)
            line["recency_bias"] = [None, 20.0 * (1 + scale), 30.0 + seed * 10 * scale]
            line["diagnostics"] = [{"grad/old": 0.0}, {"grad/old": 0.2 * scale}, {"grad/old": (0.4 + seed) * scale}]
            line["task_confusion"] = [[80.0, 10.0, 10.0], [0.0, 70.0, 30.0], [5.0, 5.0, 90.0]]
            lines.append(line)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = {r["mask"]: r for r in csv_rows(capsys, str(path))}
    assert float(rows["none"]["recency_bias_mean"]) == pytest.approx(35.0)
    assert float(rows["none"]["recency_bias_std"]) == pytest.approx(np.std([30.0, 40.0], ddof=1))
    assert float(rows["none"]["grad_old_mean"]) == pytest.approx(np.mean([(0.2 + 0.4) / 2, (0.2 + 1.4) / 2]))
    assert float(rows["ninf"]["grad_old_mean"]) == 0.0
    assert report.main([str(path), "--plots", str(tmp_path / "plots")]) == 0
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"old-grad-seq-digits-buffer20.png", "confusion-000-der_none_buffer_20_seq-digits.png"} <= names
    assert "recency bias" in capsys.readouterr().out


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


def parsed_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def der_runs(finals):
    return [record("der", "none", None, seed, final) for seed, final in enumerate(finals)]


def test_a_repeated_run_counts_once_within_a_file_and_across_files(tmp_path, capsys):
    runs = der_runs([40.0, 44.0, 48.0])
    first = write(tmp_path / "a.jsonl", runs + [runs[0]])
    second = write(tmp_path / "b.jsonl", [runs[1], runs[2]])
    out = table(capsys, first, second, "--format", "csv")
    assert parsed_csv(out.out)[0]["n"] == "3"
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
    row = parsed_csv(kept.out)[0]
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
    (["--columns", "model"], ("--columns", "without --baseline")),
    (["--columns", "model", "--baseline", "mask=none", "--format", "csv"], ("--columns", "--format csv")),
    (["--columns", "modle", "--baseline", "mask=none"], ("'modle' is not a flag", "did you mean 'model'")),
])
def test_report_options_that_would_do_nothing_are_refused(tmp_path, capsys, argv, words):
    path = write(tmp_path / "r.jsonl", der_runs([40.0, 44.0]) + [record("der", "ninf", None, 0, 50.0)])
    err = refused(capsys, path, *argv)
    for word in words:
        assert word in err, err


def test_csv_with_a_baseline_has_the_difference_and_p(tmp_path, capsys):
    runs = der_runs([40.0, 44.0, 48.0]) + [record("der", "ninf", None, s, f) for s, f in enumerate([50.0, 53.0])]
    rows = table(capsys, write(tmp_path / "r.jsonl", runs), "--format", "csv", "--baseline", "mask=none").out
    by_mask = {row["mask"]: row for row in parsed_csv(rows)}
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


def test_where_with_several_values_keeps_runs_with_any_of_them(results, capsys):
    rows = csv_rows(capsys, results, "--where", "mask=none,ninf", "lr=0.1")
    assert sorted((r["model"], r["mask"]) for r in rows) == [("der", "none"), ("er", "ninf"), ("er", "none")]


def test_compare_chooses_the_metric_the_baseline_comparison_tests(tmp_path, capsys):
    runs = []
    for mask, gaps in (("none", [40.0, 44.0, 42.0]), ("ninf", [10.0, 12.0, 14.0])):
        for seed, gap in enumerate(gaps):
            line = record("der", mask, None, seed, 30.0 + seed)
            line["stability_gap"] = {"per_switch": [], "mean": gap, "recovered_share": 25.0 * (seed + 1)}
            runs.append(line)
    runs[0]["stability_gap"].pop("recovered_share")  # a line written before the share was: n/a, no error
    path = write(tmp_path / "r.jsonl", runs)
    shares = {r["mask"]: r for r in parsed_csv(table(capsys, path, "--format", "csv").out)}
    assert shares["ninf"]["gap_recovered_mean"] == "50.0" and shares["none"]["gap_recovered_mean"] == ""
    rows = {r["mask"]: r for r in parsed_csv(table(capsys, path, "--format", "csv", "--baseline", "mask=none",
                                                   "--compare", "stability_gap").out)}
    assert float(rows["ninf"]["stability_gap_delta"]) == pytest.approx(12.0 - 42.0)
    assert float(rows["ninf"]["stability_gap_mean"]) == pytest.approx(12.0)
    assert "--compare" in refused(capsys, path, "--compare", "bogus", "--baseline", "mask=none")
    assert "without --baseline" in refused(capsys, path, "--compare", "stability_gap")
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps(record("der", mask, None, seed, 40.0 + seed)) + "\n"
                             for mask in ("none", "ninf") for seed in range(2)))
    assert "no run in the table has stability_gap; runs record it with --eval_every" in refused(
        capsys, str(plain), "--baseline", "mask=none", "--compare", "stability_gap")


def cells_of(out):
    """{row label: [cells]} of a markdown table, the header under "header"."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ")]
    return {"header": rows[0], **{row[0]: row[1:] for row in rows[1:]}}


def test_columns_lay_cures_by_model_each_against_its_own_baseline(results, capsys):
    out = table(capsys, results, "--where", "lr=0.1", "--baseline", "mask=none", "--columns", "model").out
    cells = cells_of(out)
    assert cells.pop("header") == ["Class-IL vs mask=none", "model=der", "model=er"]
    assert list(cells) == ["mask=none", "mask=general mask_value=-3.0", "mask=ninf"]
    assert cells["mask=none"] == ["44.00 ± 4.00", "30.50 ± 0.71, n = 2"]
    # Welch p 0.048 (above) and 0.0194 (variances 0.5: t = 7.07, 2 dof); Holm: 2 × 0.0194, then max(0.048, 0.039)
    assert cells["mask=general mask_value=-3.0"] == ["54.00 ± 4.58 (+10.00*, p 0.048)", "—"]
    assert cells["mask=ninf"] == ["—", "35.50 ± 0.71 (+5.00*, p 0.039), n = 2"]


def test_columns_take_any_of_several_baseline_values_and_name_a_missing_one(tmp_path, capsys):
    """Each model against its own head (der linear, er cosine); a group with no baseline is named as such."""
    runs = [record("der", mask, None, s, 40.0 + s + (5 if mask == "ninf" else 0)) for mask in ("none", "ninf")
            for s in range(3)]
    runs += [record("er", mask, None, s, 30.0 + s + (4 if mask == "ninf" else 0)) for mask in ("none", "ninf")
             for s in range(3)]
    runs += [record("er", "lode", None, 0, 10.0, lr=0.5)]
    for run in runs:
        run["args"]["head"] = "cosine" if run["model"] == "er" else "linear"
    out = table(capsys, write(tmp_path / "r.jsonl", runs), "--baseline", "mask=none", "head=linear,cosine",
                "--columns", "model").out
    cells = cells_of(out)
    assert cells["mask=none head=linear,cosine"] == ["41.00 ± 1.00", "31.00 ± 1.00"]
    # t = 6.12 and 4.90 at 4 dof: p 0.0036 and 0.0080; Holm: 2 × 0.0036, then max(0.0080, 0.0072)
    assert cells["mask=ninf"] == ["46.00 ± 1.00 (+5.00*, p 0.0072)", "35.00 ± 1.00 (+4.00*, p 0.008)"]
    lonely = "no baseline: model=er dataset=seq-digits mask=lode buffer_size=20 lr=0.5"
    assert cells[lonely] == ["—", "10.00, n = 1"]


def test_columns_refuse_two_groups_in_one_cell(tmp_path, capsys):
    runs = [record("der", "none", None, s, 40.0, lr=lr) for s in range(2) for lr in (0.1, 0.5)]
    err = refused(capsys, write(tmp_path / "r.jsonl", runs), "--baseline", "mask=none", "--columns", "model")
    assert "--columns" in err and "lr=0.1" in err and "lr=0.5" in err and "--where" in err


def test_columns_of_two_flags_in_numeric_order(tmp_path, capsys):
    runs = [record("der", mask, None, s, b / 10 + s + (3 if mask == "ninf" else 0), buffer_size=b)
            for b in (200, 50) for mask in ("none", "ninf") for s in range(3)]
    cells = cells_of(table(capsys, write(tmp_path / "r.jsonl", runs), "--baseline", "mask=none",
                           "--columns", "model", "buffer_size").out)
    assert cells["header"][1:] == ["model=der buffer_size=50", "model=der buffer_size=200"]
    # t = 3.67, 4 dof: p = 0.021 twice; Holm: 2 × 0.021 for both
    assert cells["mask=ninf"] == ["9.00 ± 1.00 (+3.00*, p 0.043)", "24.00 ± 1.00 (+3.00*, p 0.043)"]


def test_the_floor_is_fine_tuning_on_the_same_stream(tmp_path, capsys):
    """sgd on the task stream (an older line, no stream flag: read at its default) scores 60, on the gradual stream
    20; der on the gradual stream (40) is checked against the gradual floor only."""
    runs = [record("sgd", "none", None, s, 60.0 + s) for s in range(3)]
    runs += [record("sgd", "none", None, s, 20.0 + s) for s in range(3)]
    runs += [record("der", "none", None, s, 40.0 + s) for s in range(3)]
    runs += [record("der", "ninf", None, s, 45.0 + s) for s in range(3)]
    for run in runs[3:]:
        run["args"].update(stream="gradual")
    path = write(tmp_path / "r.jsonl", runs)
    out = table(capsys, path, "--where", "model=der", "--baseline", "mask=none", "--columns", "model").out
    assert cells_of(out)["sgd (fine-tuning floor)"] == ["21.00 ± 1.00"]
    assert "†" not in cells_of(out)["mask=none"][0]
