"""utils/sweep.py: grid parsing, validation before anything runs, same results as main.py independent of
the run before in a worker, resume after SIGKILL without duplicates, failures reported, Ray backend; a key
already in the results file is not run again, a torn tail never swallows a record, a flag given in two
places or a misspelt grid file is refused with one line, Ctrl-C and a closed pipe end quietly, and a lost
Ray node loses no run."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import main
from tests.conftest import ROOT
from tests.helpers import read_records, run_cli
from utils import sweep
from utils.plumbing.record import SWEEP_FIELDS
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
    counts = {"example.yaml": 85, "digits-masks-smnist.yaml": 360, "digits-masks-defaults.yaml": 360,
              "digits-cures.yaml": 580, "digits-stability.yaml": 490,
              "mnist5k-study.yaml": 1125, "cifar10-slice-study.yaml": 360,
              "paper-side-by-side.yaml": 20, "paper-protocol.yaml": 360, "protocol-evidence.yaml": 210,
              "digits-cures-healthy.yaml": 615, "mnist5k-healthy.yaml": 525, "digits-stability-healthy.yaml": 495,
              "rivals-digits.yaml": 605, "rivals-mnist5k.yaml": 605, "no-memory.yaml": 320,
              "rivals-side-by-side.yaml": 35, "task-free.yaml": 1220,
              "protocol-evidence-slice.yaml": 24, "cifar10-slice-healthy.yaml": 21}
    slice_grid = [os.path.join(ROOT, "grids", "task-free-slice.yaml"), "--dry_run", "--results_path", str(tmp_path)]
    assert sweep.main(slice_grid + ["--", "--data_path", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("35 runs, 0 already")
    for name, count in counts.items():
        assert sweep.main([os.path.join(ROOT, "grids", name), "--dry_run", "--results_path", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines()[0].startswith(f"{count} runs, 0 already")
    with open(os.path.join(ROOT, "docs", "grids-and-reports.md"), encoding="utf-8") as f:
        inline = next(line.strip() for line in f if line.strip().startswith("python -m utils.sweep --grid"))
    assert sweep.main(["--dry_run", "--results_path", str(tmp_path)] + inline.split()[3:]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("40 runs, 0 already")


RUN = ["--model", "der", "--n_epochs", "1", "--buffer_size", "20", "--quiet", "--threads", "1"]


def test_main_does_not_run_a_key_already_in_the_results_file_unless_told(tmp_path, capsys):
    results = str(tmp_path / "results")
    assert main.main(RUN + ["--results_path", results]) == 0
    first = capsys.readouterr().out
    assert f"results line appended to {os.path.join(results, 'results.jsonl')}" in first
    assert main.main(RUN + ["--results_path", results, "--threads", "2"]) == 0  # threads: not part of the key
    again = capsys.readouterr().out
    assert "already has a result" in again and "(line 1," in again and "--rerun" in again
    assert len(read_records(results)) == 1
    assert main.main(RUN + ["--results_path", results, "--rerun"]) == 0
    records = read_records(results)
    assert len(records) == 2 and records[0]["key_hash"] == records[1]["key_hash"]
    assert records[0]["class_il"] == records[1]["class_il"]


def test_a_torn_tail_then_a_sweep_and_a_main_append_lose_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    path = results / "results.jsonl"
    path.write_text('{"model": "der", "key_hash": "abc", "class_il": {"matr')
    assert sweep.main(["--workers", "1", "--results_path", str(results), "--grid", "model=der", "seed=0", "--",
                       *DIGITS]) == 0
    captured = capsys.readouterr()
    assert "0 already in" in captured.out and "1 run done" in captured.out
    assert "torn line" in captured.err and "could not be read" in captured.err
    assert (results / "results.jsonl.torn").read_text().startswith('{"model": "der", "key_hash": "abc"')
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"torn again')
    assert main.main(["--model", "der", "--seed", "1", *DIGITS, "--quiet", "--results_path", str(results)]) == 0
    assert "torn line" in capsys.readouterr().err
    assert [r["args"]["seed"] for r in read_records(results)] == [0, 1]


@pytest.mark.parametrize("argv,words", [
    (["--grid", "model=der", "seed=0-1", "--", "--buffer_size", "20", "--seed", "3"],
     ("--seed", "--grid", "after --", "one place")),
    (["--grid", "model=der", "--", "--buffer_size", "20", "--results_path", "elsewhere"],
     ("--results_path", "option of the sweep", "before --")),
    (["--grid", "model=der", "results_path=x", "--", "--buffer_size", "20"], ("--results_path", "option of the sweep")),
    (["--grid", "model=der", "--", "--buffer_size", "20", "--name", "x"], ("--name", "option of the sweep")),
    (["--grid", "model=der", "--", "--buffer_size", "20", "--buffer_size", "200"], ("--buffer_size", "twice")),
    (["--grid", "model=der", "seed=0-1", "seed=3", "--", "--buffer_size", "20"], ("seed", "twice")),
    (["--grid", "model", "der"], ("'model' has no value", "model=VALUE")),
    (["--grid", "model=der", "--", "--buffer_size", "20", "--rerun"], ("--rerun", "not allowed in a sweep")),
    (["--grid", "model=der", "resume", "--", "--buffer_size", "20"], ("--resume", "resumes by itself")),
    (["--grid", "model=der", "--", "--buffer_size", "20", "--checkpoint_dir", "c"], ("--checkpoint_dir", "share")),
    (["--grid", "model=der", "seed=4-0", "--", "--buffer_size", "20"], ("--grid", "'4-0' is empty")),
])
def test_conflicting_or_malformed_sweep_flags_are_refused_before_anything_runs(tmp_path, capsys, argv, words):
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--results_path", str(results), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    for word in words:
        assert word in err, err
    assert "split the block" not in err and not results.exists()


@pytest.mark.parametrize("text,words", [
    ("block:\n  - model: der\n    buffer_size: 20\n", ("no blocks: key", "found block:")),
    ("name: x\nBlocks:\n  - model: der\n", ("no blocks: key", "Blocks")),
    ("blocks: []\n", ("blocks: is empty",)),
    ("", ("the file is empty",)),
    ("blocks:\n  - model: der\n    buffer_size: 20\n  - model: der\n    seed: 4-0\n", ("block 2", "'4-0' is empty")),
    ("common: {seed: 1}\nblocks:\n  - {model: der, seed: [1, 2], buffer_size: 20}\n",
     ("--seed", "block 1", "common")),
    ("- {model: der, mask: general, mask_value: [0, nan], buffer_size: 20}\n", ("block 1, run 2", "'nan'")),
])
def test_grid_file_mistakes_are_one_line_naming_the_file_and_mistake(tmp_path, capsys, text, words):
    grid = tmp_path / "study.yaml"
    grid.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main([str(grid), "--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and str(grid) in err
    for word in words:
        assert word in err, err
    assert "split the block" not in err and not (tmp_path / "results").exists()


def test_dry_run_marks_runs_already_done_and_repeated(tmp_path, capsys):
    results = tmp_path / "results"
    assert main.main(["--model", "der", "--seed", "1", *DIGITS, "--quiet", "--threads", "1",
                      "--results_path", str(results)]) == 0
    capsys.readouterr()
    grid = tmp_path / "g.yaml"
    grid.write_text("- {model: der, seed: 0-1, buffer_size: 20, n_epochs: 1}\n- {model: der, seed: 0, buffer_size: 20,"
                    " n_epochs: 1}\n")
    assert sweep.main([str(grid), "--dry_run", "--results_path", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3 runs (1 repeating an earlier run of the grid, run once), 1 already in")
    assert out[0].endswith("1 to run")
    assert out[1].endswith(f"--threads {sweep.threads_per_run(1)}") and out[2].endswith("# already in the results file")
    assert out[3].endswith("# repeats an earlier run of the grid")


def test_ctrl_c_during_mains_torch_import_is_one_line():
    process = subprocess.Popen([sys.executable, "main.py", *RUN], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                                  signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline:  # the torch import is under way once its library is mapped
        with open(f"/proc/{process.pid}/maps", encoding="utf-8") as f:
            if "libtorch" in f.read():
                break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip().count("\n") == 0 and "interrupted" in err, err


@pytest.mark.parametrize("tool", ["sweep", "report"])
def test_a_closed_pipe_ends_the_tool_without_a_traceback(tmp_path, tool):
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps({"args": {"model": "der", "seed": s, "lr": lr}, "class_il": {
        "final_avg": 1.0, "forgetting": 0, "bwt": 0, "fwt": None, "matrix": [[1.0]]}, "task_il": {"final_avg": 1.0}})
                               + "\n" for s in range(3) for lr in range(300)))
    argv = {"sweep": ["-m", "utils.sweep", "--dry_run", "--results_path", str(tmp_path), "--grid", "model=der",
                      "seed=0-99", "--", "--buffer_size", "20"],
            "report": ["-m", "utils.report", str(results), "--format", "csv"]}[tool]
    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.stdout.close()  # the reader went away before the first line
    err = process.stderr.read()
    process.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert process.returncode == 141


def test_ctrl_c_ends_a_sweep_within_seconds_and_the_rerun_completes(tmp_path):
    results = tmp_path / "results"
    argv = ["--results_path", str(results), "--grid", "model=der", "mask=ninf", "seed=0-19", "--", *DIGITS]
    # a terminal's default Ctrl-C handling, even where pytest was started in the background (SIGINT ignored)
    driver = subprocess.Popen([sys.executable, "-m", "utils.sweep", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while len(read_records(results)) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    sent = time.time()
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, err = driver.communicate(timeout=120)
    assert time.time() - sent < 10  # it took 17-28 s before the workers were ended at once
    assert driver.returncode == 130 and "Traceback" not in err and "warning" not in err, err
    assert err.index("stopping") < err.index("finished runs of this sweep are in")
    records = read_records(results)
    assert len(records) == len({r["key_hash"] for r in records}) >= 2
    rerun = sweep_cli(*argv)
    assert rerun.returncode == 0 and f"{len(records)} already in" in rerun.stdout, rerun.stderr
    records = read_records(results)
    assert len(records) == 20 and len({r["key_hash"] for r in records}) == 20


def test_sigterm_to_the_driver_ends_its_workers_and_the_rerun_completes(tmp_path):
    """What a cluster scheduler sends to the sweep's process alone: the workers end with it (none orphaned)."""
    results = tmp_path / "results"
    argv = ["--results_path", str(results), "--grid", "model=der", "mask=ninf", "seed=0-19", "--", *DIGITS]
    driver = subprocess.Popen([sys.executable, "-m", "utils.sweep", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while len(read_records(results)) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    workers = children_of(driver.pid)
    assert workers
    sent = time.time()
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert time.time() - sent < 10
    assert driver.returncode == 143 and "Traceback" not in err and "terminated;" in err, err
    deadline = time.time() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
    records = read_records(results)
    rerun = sweep_cli(*argv)
    assert rerun.returncode == 0 and f"{len(records)} already in" in rerun.stdout, rerun.stderr
    assert len(read_records(results)) == 20


def children_of(pid):
    """The process ids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def alive(pid):
    """A process that exists and is not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_lost_ray_node_and_a_killed_driver_lose_and_duplicate_nothing(tmp_path):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    os.environ.update(RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        results = tmp_path / "results"
        argv = ["--backend", "ray", "--address", cluster.address, "--results_path", str(results), "--grid",
                "model=der", "seed=0-7", "--", "--n_epochs", "20", "--buffer_size", "20"]
        driver = subprocess.Popen([sys.executable, "-m", "utils.sweep", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 180
        while not read_records(results) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)  # both worker nodes are in a run (each takes seconds): the removed node's is lost
        cluster.remove_node(workers[0])
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-2000:]
        retried = re.search(r"8 runs done, 0 failed, (\d+) runs? retried", out)
        assert retried and err.count("retried after a lost worker or node") == int(retried.group(1)) >= 1, out + err
        records = read_records(results)  # every line whole, one per run
        assert sorted(r["args"]["seed"] for r in records) == list(range(8))

        killed = argv[:argv.index("seed=0-7")] + ["seed=8-13"] + argv[argv.index("seed=0-7") + 1:]
        driver = subprocess.Popen([sys.executable, "-m", "utils.sweep", *killed], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while len(read_records(results)) < 9 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.02)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        rerun = subprocess.run([sys.executable, "-m", "utils.sweep", *killed], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        seeds = [r["args"]["seed"] for r in read_records(results)]
        assert sorted(seeds) == list(range(14))
    finally:
        cluster.shutdown()


def test_false_in_a_grid_turns_an_on_off_flag_off(tmp_path, capsys):
    assert sweep.main(["--dry_run", "--results_path", str(tmp_path), "--grid", "model=sgd", "dataset=seq-cifar10",
                       "channels_last=true,false", "eval_future=false"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 runs, 0 already")  # two distinct runs, not one repeated
    assert "--channels_last " in out[1] and "--no-channels_last " in out[2] and "eval_future" not in out[1] + out[2]


def test_a_gpu_worker_keeps_a_runs_own_device():
    from utils.study.worker import pinned
    assert pinned(["--model", "er"], "cuda:1") == ["--model", "er", "--device", "cuda:1"]
    assert pinned(["--model", "er", "--device", "cpu"], "cuda:1") == ["--model", "er", "--device", "cpu"]
    assert pinned(["--model", "er"], None) == ["--model", "er"]


@pytest.mark.parametrize("cores,runs,threads", [(2, 1, 2), (2, 2, 1), (2, 360, 1), (16, 3, 5), (1, 4, 1), (2, 0, 2)])
def test_the_cores_are_shared_out_among_the_runs_to_do(monkeypatch, cores, runs, threads):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert sweep.threads_per_run(runs) == threads
