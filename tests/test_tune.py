"""Tuning on a validation split: the held-out part is disjoint from what trains and from the test split, seeded and
class-balanced; a run with --validation never reads the test split; the pick is the known best of a hand-made grid;
python -m utils.tune runs selection, pick and final end to end, refuses unequal budgets, and --config reads its
picked file (its path never in the run key)."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import main
from datasets.base import held_out
from datasets.seq_digits import SequentialDigits
from tests.helpers import read_records, run_main
from utils import report, tune
from utils.study.grid import GridError
from utils.study.tuning import pick, trials_by_group


def test_the_held_out_part_is_seeded_class_balanced_and_disjoint(tmp_path):
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 21)
    held = held_out(labels, 0.2, seed=0)
    assert [int(held[labels == c].sum()) for c in range(3)] == [10, 6, 4]  # round(0.2 · 50, 30, 21)
    assert torch.equal(held, held_out(labels, 0.2, seed=0)) and not torch.equal(held, held_out(labels, 0.2, seed=1))
    full = SequentialDigits(SimpleNamespace()).load_splits()
    dataset = SequentialDigits(SimpleNamespace(validation=0.1, validation_seed=0))
    dataset.prepare("cpu")
    kept, validation = dataset.splits.train_images, dataset.splits.test_images
    assert len(kept) + len(validation) == len(full.train_images)
    rows = {tuple(image.flatten().tolist()) for image in full.train_images}
    test_rows = {tuple(image.flatten().tolist()) for image in full.test_images}
    kept_rows = {tuple(image.flatten().tolist()) for image in kept}
    validation_rows = {tuple(image.flatten().tolist()) for image in validation}
    assert validation_rows <= rows and not validation_rows & kept_rows and not validation_rows & test_rows - rows
    counts = np.bincount(dataset.splits.test_labels.numpy())
    assert counts.max() - counts.min() <= 1  # digits has 133-138 training images per class


def test_a_validation_run_never_reads_the_test_split(tmp_path, monkeypatch):
    flags = ("--model", "er", "--buffer_size", "20", "--validation", "0.2")
    honest = run_main(tmp_path / "a", *flags)
    load = SequentialDigits.load_splits

    def junk_test_split(self):
        splits, draws = load(self), torch.Generator().manual_seed(1)
        return splits._replace(test_images=torch.randint(0, 255, splits.test_images.shape, dtype=torch.uint8,
                                                         generator=draws),
                               test_labels=torch.randint(0, 10, splits.test_labels.shape, generator=draws))
    monkeypatch.setattr(SequentialDigits, "load_splits", junk_test_split)
    monkeypatch.setattr(SequentialDigits, "BUNDLED", False)
    junk = run_main(tmp_path / "b", *flags)
    assert junk["class_il"]["matrix"] == honest["class_il"]["matrix"]
    plain = run_main(tmp_path / "c", "--model", "er", "--buffer_size", "20")
    assert plain["class_il"]["matrix"] != honest["class_il"]["matrix"]


def record(lr, alpha, seed, final, model="der"):
    return {"args": {"model": model, "lr": lr, "alpha": alpha, "seed": seed, "validation": 0.1},
            "class_il": {"final_avg": final}}


def test_the_pick_is_the_best_mean_over_the_selection_seeds():
    groups = trials_by_group([{"model": "der", "lr": [0.01, 0.1], "alpha": [0.3, 1.0]}], {}, {"lr", "alpha"})
    finals = {(0.01, 0.3): [40, 44], (0.01, 1.0): [50, 30], (0.1, 0.3): [45, 47], (0.1, 1.0): [60, 20]}
    records = [record(lr, alpha, seed, value) for (lr, alpha), values in finals.items()
               for seed, value in enumerate(values)]
    [entry] = pick(groups, records, "class_il_final_avg", [0, 1])
    assert entry["picked"] == {"lr": 0.1, "alpha": 0.3} and entry["mean"] == 46 and entry["trials"] == 4
    assert [score["mean"] for score in entry["scores"]] == [42, 40, 46, 40]
    ties = pick(groups, [record(lr, alpha, s, 40) for (lr, alpha) in finals for s in (0, 1)], "class_il_final_avg",
                [0, 1])
    assert ties[0]["picked"] == {"lr": 0.01, "alpha": 0.3}  # the first trial in the grid's order
    with pytest.raises(GridError, match="with seed 2"):
        pick(groups, records, "class_il_final_avg", [0, 1, 2])


def test_unequal_budgets_and_shared_seeds_are_refused(tmp_path, capsys):
    with pytest.raises(GridError, match="different numbers of trials"):
        trials_by_group([{"model": "der", "mask": "none", "lr": [0.01, 0.1]},
                         {"model": "der", "mask": "general", "lr": [0.01, 0.1], "mask_value": [-1, -3]}], {},
                        {"lr", "mask_value"})
    grid = tmp_path / "t.yaml"
    grid.write_text("tune: {flags: [lr], selection_seeds: 0-2, final_seeds: 2-4}\n"
                    "blocks:\n  - {model: er, lr: [0.1]}\n")
    with pytest.raises(SystemExit) as exit_info:
        tune.main([str(grid), "--results_path", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "share [2] with the selection seeds" in err and err.count("\n") == 1


TINY = """name: tiny
common: {dataset: seq-digits, n_epochs: 1, buffer_size: 20}
tune: {flags: [lr], validation: 0.2, selection_seeds: 0-1, final_seeds: 5}
blocks:
  - model: er
    mask: [none, ninf]
    lr: [0.01, 0.1]
"""


def test_tune_selects_on_validation_then_runs_the_pick_on_the_test_split(tmp_path, capsys):
    grid = tmp_path / "tiny.yaml"
    grid.write_text(TINY)
    out = tmp_path / "out"
    assert tune.main([str(grid), "--results_path", str(out)]) == 0
    selection = read_records(out / "selection")
    assert len(selection) == 8 and all(r["args"]["validation"] == 0.2 for r in selection)
    picked = json.loads((out / "picked.json").read_text())["entries"]
    for entry in picked:
        means = {lr: np.mean([r["class_il"]["final_avg"] for r in selection
                              if r["args"]["mask"] == entry["group"]["mask"] and r["args"]["lr"] == lr])
                 for lr in (0.01, 0.1)}
        assert entry["picked"] == {"lr": max(means, key=means.get)} and entry["trials"] == 2
    final = read_records(out / "final")
    assert len(final) == 2 and all(r["seed"] == 5 and r["args"]["validation"] == 0.0 for r in final)
    for record in final:
        entry = next(e for e in picked if e["group"]["mask"] == record["mask"])
        assert record["args"]["lr"] == entry["picked"]["lr"]
        assert record["config_source"].startswith("tuned: best of 2 trials of lr by class_il_final_avg")
    capsys.readouterr()
    assert report.main([str(out / "final" / "results.jsonl")]) == 0
    shown = capsys.readouterr().out
    assert "| config " in shown and "every group's configuration: tuned (2 trials)" in shown
    assert tune.main([str(grid), "--results_path", str(out)]) == 0  # resumes: nothing runs twice
    assert "8 already in" in capsys.readouterr().out and len(read_records(out / "final")) == 2

    moved = tmp_path / "elsewhere" / "picked.json"
    moved.parent.mkdir()
    shutil.copy(out / "picked.json", moved)
    again = run_main(tmp_path / "again", "--model", "er", "--mask", "none", "--buffer_size", "20", "--seed", "5",
                     "--n_epochs", "1", "--config", str(moved))
    first = next(r for r in final if r["mask"] == "none")
    assert again["key_hash"] == first["key_hash"] and again["class_il"] == first["class_il"]
    with pytest.raises(SystemExit) as exit_info:
        main.main(["--model", "der", "--buffer_size", "20", "--config", str(moved)])
    assert exit_info.value.code == 2 and "no picked configuration for this run's flags" in capsys.readouterr().err


def test_the_shipped_tune_grid_is_valid_and_equal_in_budget(tmp_path, capsys):
    from tests.conftest import ROOT

    assert tune.main([f"{ROOT}/grids/tune-digits.yaml", "--results_path", str(tmp_path), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "10 groups × 8 trials × 3 selection seeds" in out and "240 + 50 runs" in out
    assert "240 runs, 0 already in" in out
    healthy = [f"{ROOT}/grids/tune-digits-healthy.yaml", "--results_path", str(tmp_path / "h"), "--dry_run"]
    assert tune.main(healthy) == 0
    out = capsys.readouterr().out
    assert "25 groups × 8 trials × 3 selection seeds" in out and "600 + 125 runs" in out
