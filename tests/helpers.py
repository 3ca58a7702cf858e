"""Run main.py in-process or as a subprocess and read what it wrote."""
import json
import math
import os
import signal
import subprocess
import sys

import main
from tests.conftest import ROOT

QUICK = {"gdumb": ["--fitting_epochs", "32"], "lucir": ["--fitting_epochs", "2"]}  # their task-end training, shortened


def model_flags(model, buffer_size=20):
    """The flags a test of every model gives `model`: a buffer where it replays, its task-end training shortened."""
    from models import MODELS

    return (["--buffer_size", str(buffer_size)] if MODELS.get(model).NEEDS_BUFFER else []) + QUICK.get(model, [])


def run_main(tmp_path, *flags):
    """main.main() in-process with results under tmp_path; returns the last results record."""
    results = tmp_path / "results"
    status = main.main(["--quiet", "--results_path", str(results), "--data_path", str(tmp_path / "data"),
                        *flags])  # a later --data_path in flags wins
    assert status == 0
    return read_records(results)[-1]


def read_records(results):
    path = os.path.join(results, "results.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def run_cli(*flags, cwd=ROOT):
    return subprocess.run([sys.executable, "main.py", *flags], cwd=cwd, capture_output=True, text=True, timeout=300)


class Exploit:
    """Pickles to a call of os.system: loading it must be refused before `marker` is touched."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def all_finite(summary):
    """Every evaluated entry (the lower triangle; all of it with --eval_future) and metric is finite."""
    values = [v for i, row in enumerate(summary["matrix"]) for j, v in enumerate(row) if j <= i or v is not None]
    values += [summary[k] for k in ("final_avg", "forgetting", "bwt", "plasticity", "stability")]
    values += [] if summary["fwt"] is None else [summary["fwt"]]
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


def interrupt_then_resume(monkeypatch, model_cls, at_step, flags, between=lambda: None):
    """main.main(flags) receives SIGTERM during step `at_step` (exit 143), `between()` runs, then main.main(flags +
    --resume) finishes; returns the resume's exit status."""
    real_observe, calls = model_cls.observe, [0]

    def observe_then_signal(self, images, labels):
        calls[0] += 1
        if calls[0] == at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_observe(self, images, labels)
    monkeypatch.setattr(model_cls, "observe", observe_then_signal)
    assert main.main(flags) == 143
    monkeypatch.setattr(model_cls, "observe", real_observe)
    between()
    return main.main(flags + ["--resume"])


def parse(*argv):
    """main.py's parse of argv: (args, model class, dataset class)."""
    return main.parse_args(list(argv))


def build_model(*argv, backbone=None):
    """(model, dataset) on the CPU from main.py flags, with the dataset's backbone unless one is given."""
    args, model_cls, dataset_cls = parse(*argv, "--device", "cpu")
    dataset = dataset_cls(args)
    dataset.prepare("cpu")
    return model_cls(backbone or dataset.get_backbone(), args, dataset, "cpu"), dataset


def counts_at_a_step(labels, n_classes, distribution=None, window=1):
    """A model's LabelCounts during a step: the task's class counts (default 1..C) given at its start, the
    step's labels counted."""
    import torch

    from utils.core.label_counts import LabelCounts

    counts = LabelCounts(torch.zeros(n_classes))
    counts.keep_recent(window)
    counts.begin_task(torch.arange(1, n_classes + 1) if distribution is None else torch.as_tensor(distribution))
    counts.begin_step()
    counts.add(labels)
    return counts


def mask_at_a_step(name, value, labels, n_classes):
    """The mask as a model holds it during a step (counts_at_a_step)."""
    from utils.core.masks.base import build_mask

    return build_mask(name, value, counts=counts_at_a_step(labels, n_classes))
