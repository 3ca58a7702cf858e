"""utils.sweep: grid parsing, validation before anything runs, same results as main.py independent of
the run before in a worker, resume after SIGKILL without duplicates, failures reported, Ray backend."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.helpers import read_records, run_cli
from utils import sweep
from utils.record import SWEEP_FIELDS
from utils.study.grid import GridError, block_runs, expand, load_grid_file, parse_inline

DIGITS = ["--n_epochs", "1", "--buffer_size", "20"]


def test_grid_file_blocks_lists_ranges_and_common_flags(tmp_path):
    grid = tmp_path / "study.yaml"
    grid.write_text("name: my-study\ncommon:\n  n_epochs: 1\n  eval_future: true\nblocks:\n"
                    "  - model: [der, derpp]\n    mask: [none, ninf]\n    seed: 0-2\n    buffer_size: 20\n"
                    "  - model: er\n    mask: general\n    mask_value: [0, -3]\n    buffer_size: [20, 200]\n"
                    "    mask_buffer: false\n")
    name, blocks, common = load_grid_file(str(grid))
    assert name == "my-study" and common == ["--n_epochs", "1", "--eval_future"]
    runs = [argv for block in blocks for argv in block_runs(block, common)]
    assert len(runs) == 2 * 2 * 3 + 2 * 2
    assert runs[0] == ["--model", "der", "--mask", "none", "--seed", "0", "--buffer_size", "20",
                       "--n_epochs", "1", "--eval_future"]
    assert runs[-1] == ["--model", "er", "--mask", "general", "--mask_value", "-3", "--buffer_size", "200",
                        "--n_epochs", "1", "--eval_future"]


def test_inline_grid_and_ranges():
    block = parse_inline(["model=der,derpp", "seed=0-4", "mask_value=0,-3", "eval_future"])
    assert block == {"model": ["der", "derpp"], "seed": ["0-4"], "mask_value": ["0", "-3"], "eval_future": True}
    assert expand("0-4") == [0, 1, 2, 3, 4] and expand("-3") == ["-3"] and expand([1, "2-3"]) == [1, 2, 3]
    assert len(block_runs(block)) == 2 * 5 * 2
    with pytest.raises(GridError, match="empty"):
        expand("4-0")


@pytest.mark.parametrize("grid,words", [
    (["model=er,der", "alpha=0.3"], ("--grid, run 1", "--alpha", "model er", "split the block")),
    (["model=der", "mask=general", "mask_value=0,nan"], ("--grid, run 2", "--mask_value", "'nan'")),
    (["model=der", "mask=none,general", "mask_value=-3"], ("--grid, run 1", "--mask_value", "mask none", "split")),
])
def test_invalid_runs_stop_the_sweep_before_anything_runs(tmp_path, capsys, grid, words):
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--results_path", str(results), "--grid", *grid, "--", *DIGITS])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    for word in words:
        assert word in err, err
    assert not results.exists()


def test_dry_run_prints_every_command(tmp_path, capsys):
    assert sweep.main(["--dry_run", "--results_path", str(tmp_path), "--grid", "model=der,derpp", "seed=0-1",
                       "--", *DIGITS]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("4 runs, 0 already in") and len(out) == 5
    assert all(line.startswith("python main.py --model") for line in out[1:])
    assert not os.listdir(tmp_path)


def sweep_cli(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "utils.sweep", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_runs_match_main_and_do_not_depend_on_the_run_before(tmp_path):
    target = ["--model", "derpp", "--mask", "stopgrad", "--mask_value", "-1", "--seed", "3", *DIGITS]
    grid = tmp_path / "order.yaml"
    grid.write_text("- {model: er, mask: ninf, seed: 1, n_epochs: 1, buffer_size: 20, lr: 0.05}\n"
                    "- {model: derpp, mask: stopgrad, mask_value: -1, seed: 3, n_epochs: 1, buffer_size: 20}\n")
    after_other = sweep_cli(str(grid), "--workers", "1", "--results_path", str(tmp_path / "a"))
    assert after_other.returncode == 0, after_other.stderr
    alone = sweep_cli("--workers", "1", "--results_path", str(tmp_path / "b"), "--grid", "model=derpp",
                      "mask=stopgrad", "mask_value=-1", "seed=3", "--", *DIGITS)
    assert alone.returncode == 0, alone.stderr
    reference = run_cli(*target, "--quiet", "--threads", "1", "--results_path", str(tmp_path / "c"))
    assert reference.returncode == 0, reference.stderr
    expected = read_records(tmp_path / "c")[0]
    for folder in ("a", "b"):
        record = next(r for r in read_records(tmp_path / folder) if r["model"] == "derpp")
        assert record["class_il"]["matrix"] == expected["class_il"]["matrix"]
        assert record["task_il"]["matrix"] == expected["task_il"]["matrix"]
        assert record["key_hash"] == expected["key_hash"] and record["key"]["mask"] == "stopgrad"
        assert set(record) - set(expected) == set(SWEEP_FIELDS)
    assert read_records(tmp_path / "a")[0]["sweep"] == "order"


def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path):
    results = tmp_path / "results"
    argv = ["--workers", "1", "--results_path", str(results), "--grid", "model=der", "mask=ninf", "seed=0-5", "--",
            *DIGITS]
    driver = subprocess.Popen([sys.executable, "-m", "utils.sweep", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while len(read_records(results)) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    killed_at = len(read_records(results))
    assert 2 <= killed_at < 6
    rerun = sweep_cli(*argv)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{killed_at} already in" in rerun.stdout
    records = read_records(results)
    assert len(records) == 6 and len({r["key_hash"] for r in records}) == 6


def test_a_failing_run_is_reported_and_the_rest_finish(tmp_path):
    result = sweep_cli("--results_path", str(tmp_path), "--grid", "model=der", "lr=0.1,1e30", "--", *DIGITS)
    assert result.returncode == 1
    assert "failed: python main.py --model der --lr 1e30" in result.stderr and "non-finite" in result.stderr
    assert [r["args"]["lr"] for r in read_records(tmp_path)] == [0.1]


def test_ray_backend_gives_the_local_backend_matrices(tmp_path):
    pytest.importorskip("ray")
    grid = ["--grid", "model=der,er", "mask=ninf", "--", *DIGITS]
    local = sweep_cli("--results_path", str(tmp_path / "local"), *grid)
    assert local.returncode == 0, local.stderr
    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    remote = sweep_cli("--backend", "ray", "--results_path", str(tmp_path / "ray"), *grid, env=env)
    assert remote.returncode == 0, remote.stderr[-2000:]
    by_model = {r["model"]: r for r in read_records(tmp_path / "local")}
    for record in read_records(tmp_path / "ray"):
        assert record["class_il"]["matrix"] == by_model[record["model"]]["class_il"]["matrix"]
    assert len(read_records(tmp_path / "ray")) == 2


def test_shipped_grids_and_the_readme_example_are_valid(tmp_path, capsys):
    counts = {"example.yaml": 80, "digits-masks-smnist.yaml": 360, "digits-masks-defaults.yaml": 360}
    for name, count in counts.items():
        assert sweep.main([os.path.join(ROOT, "grids", name), "--dry_run", "--results_path", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines()[0].startswith(f"{count} runs, 0 already")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        inline = next(line.strip() for line in f if line.strip().startswith("python -m utils.sweep --grid"))
    assert sweep.main(["--dry_run", "--results_path", str(tmp_path)] + inline.split()[3:]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("40 runs, 0 already")
