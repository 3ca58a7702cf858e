"""The CUDA path: every model × mask trains on a GPU; bf16 and fp16 autocast (fp16 with its gradient scaler),
channels_last and compile; a checkpoint written on CUDA resumes to the uninterrupted run's matrix; deterministic
mode repeats itself; and no training step makes the host wait for the device
(`torch.cuda.set_sync_debug_mode`, the CUDA counterpart of tests/test_host_sync.py's guard). Skipped with one line
where no CUDA device is present, as in CI; `tools/gpu_check.sh` runs them where one is."""
import contextlib
import traceback
import warnings

import pytest
import torch

from models import MODELS
from tests.helpers import all_finite, interrupt_then_resume, read_records, run_main
from tests.test_datasets import write_cifar10
from utils.core.buffer import Buffer
from utils.core.masks import MASKS
from utils.core.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: tools/gpu_check.sh runs these where a GPU is")

CUDA = ["--device", "cuda", "--threads", "1"]
DIGITS = ["--n_epochs", "1", "--batch_size", "100"]  # 3 steps per task on seq-digits
CIFAR = ["--dataset", "seq-cifar10", "--nf", "8", "--n_epochs", "1", "--batch_size", "16"]


def buffer_flags(model):
    return ["--buffer_size", "20"] if MODELS.get(model).NEEDS_BUFFER else []


@pytest.fixture
def cifar(tmp_path):
    """seq-cifar10 flags on a small folder in the official layout (40 training images per class)."""
    write_cifar10(tmp_path / "data", per_file=80)
    return CIFAR + ["--data_path", str(tmp_path / "data")]


def check_ran_on_the_gpu(record):
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])
    assert record["environment"]["gpu"] == torch.cuda.get_device_name() and record["environment"]["cuda"]


@pytest.mark.parametrize("model", MODELS.names())
def test_every_mask_trains_on_cuda(tmp_path, model):
    for mask in MASKS.names():
        check_ran_on_the_gpu(run_main(tmp_path, "--model", model, "--mask", mask, *buffer_flags(model), *DIGITS,
                                      *CUDA, "--rerun"))


@pytest.mark.parametrize("levers", [["--amp", "bf16"], ["--amp", "fp16"], ["--channels_last"],
                                    ["--channels_last", "--amp", "bf16"]], ids=" ".join)
def test_levers_on_cuda(tmp_path, cifar, levers):
    for model in MODELS.names():
        record = run_main(tmp_path, "--model", model, "--mask", "general", *buffer_flags(model), *cifar, *CUDA,
                          *levers, "--rerun")
        check_ran_on_the_gpu(record)
        assert record["args"]["amp"] == (levers[levers.index("--amp") + 1] if "--amp" in levers else None)


def test_levers_auto_bf16_chooses_on_cuda(tmp_path, cifar):
    record = run_main(tmp_path, "--model", "derpp", "--buffer_size", "20", *cifar, *CUDA, "--levers", "auto-bf16")
    check_ran_on_the_gpu(record)
    assert {"fp32", "bf16"} <= set(record["levers"]["step_ms"]), record["levers"]


@pytest.mark.parametrize("model", ["derpp", "xder"])
def test_compile_on_cuda(tmp_path, cifar, model):
    check_ran_on_the_gpu(run_main(tmp_path, "--model", model, "--buffer_size", "20", *cifar, *CUDA, "--compile"))


@pytest.mark.parametrize("model,dataset", [("derpp", "digits"), ("xder", "cifar")])
def test_a_checkpoint_written_on_cuda_resumes_to_the_same_matrix(tmp_path, cifar, monkeypatch, model, dataset):
    """Buffer draws, reservoir slots and (on seq-cifar10) X-DER's views draw from the CUDA generator, so the
    resumed run matches only if the checkpoint restored its state; --deterministic rules out atomics."""
    data = cifar if dataset == "cifar" else ["--n_epochs", "2"]
    flags = ["--model", model, "--mask", "stopgrad", "--buffer_size", "20", *data, *CUDA, "--deterministic",
             "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, MODELS.get(model), 7, resumed) == 0
    record = read_records(tmp_path / "resumed")[-1]
    assert record["class_il"]["matrix"] == whole["class_il"]["matrix"]
    assert record["task_il"]["matrix"] == whole["task_il"]["matrix"]


@pytest.mark.parametrize("model", ["derpp", "er_ace", "xder"])
def test_deterministic_on_cuda_repeats_itself(tmp_path, cifar, model):
    flags = ["--model", model, "--buffer_size", "20", *cifar, *CUDA, "--deterministic"]
    first, second = (run_main(tmp_path / name, *flags) for name in ("a", "b"))
    assert first["class_il"]["matrix"] == second["class_il"]["matrix"]
    assert first["task_il"]["matrix"] == second["task_il"]["matrix"]


class SyncRecorder:
    """Inside `watching()`, torch's sync debug mode reports each host synchronisation; the recorder keeps the
    project's frames of the stack of each (all of them, not only the first, so one GPU run names every site)."""

    def __init__(self):
        self.sites = {}
        self.depth = 0

    @contextlib.contextmanager
    def watching(self):
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = self.note
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode("default")

    @contextlib.contextmanager
    def allowed(self):
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("default")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    def note(self, message, category, filename, lineno, file=None, line=None):
        if "called a synchronizing CUDA operation" not in str(message):  # not torch's once-per-process notice that
            return  # the mode is a prototype
        frames = [frame for frame in traceback.extract_stack()[:-2] if "/site-packages/" not in frame.filename
                  or "/kornia/" in frame.filename]
        site = "".join(traceback.format_list(frames[-9:]))
        self.sites[site] = self.sites.get(site, 0) + 1

    def report(self):
        return "\n".join(f"{count} times at:\n{site}" for site, count in self.sites.items())


@pytest.fixture
def recorder(monkeypatch):
    recorder = SyncRecorder()

    def step(self, batch, bar):
        with recorder.watching():
            return real_step(self, batch, bar)

    def allowing(function, allow):
        def wrapper(*args, **kwargs):
            with recorder.allowed() if allow(*args) else contextlib.nullcontext():
                return function(*args, **kwargs)
        return wrapper
    real_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", step)
    monkeypatch.setattr(Trainer, "check_finite", allowing(Trainer.check_finite, lambda self: True))
    monkeypatch.setattr(Buffer, "add", allowing(Buffer.add, lambda buffer, *rest: buffer.n_seen < buffer.capacity))
    return recorder


@pytest.mark.parametrize("model", MODELS.names())
def test_no_step_synchronises_with_the_device(tmp_path, cifar, recorder, model):
    """The buffer's insertion while it fills and the non-finite check at the logging interval are the reads
    allowed, as on the CPU."""
    for mask in MASKS.names():
        run_main(tmp_path, "--model", model, "--mask", mask, *buffer_flags(model), *cifar, *CUDA, "--rerun")
    assert not recorder.sites, recorder.report()
