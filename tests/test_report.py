"""utils.report: groups, means, sample stds and Welch p-values against hand computation and scipy;
pivot, formats and filters; plots written as non-blank PNGs of the expected size."""
import csv
import io
import json
import math

import numpy as np
import pytest
from scipy import stats

from utils import report

# final Class-IL per seed for (model, mask, m)
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


def test_welch_p_value_against_the_formula_and_scipy(results, capsys):
    assert report.main([results, "--where", "model=der", "lr=0.1", "--baseline", "mask=none"]) == 0
    out = capsys.readouterr().out
    a, b = np.array(FINALS[("der", "general", -3.0)]), np.array(FINALS[("der", "none", None)])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p = 2 * stats.t.sf(abs(t), dof)
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    row = next(line for line in out.splitlines() if "general" in line)
    assert f"+{a.mean() - b.mean():.2f}*" in row and f"{p:.3g}" in row
    assert "baseline" in next(line for line in out.splitlines() if "| none" in line)
    assert "sample standard deviation (n−1)" in out


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
