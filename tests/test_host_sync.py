"""No host read inside a training step. Every model × mask, and each calibration, head and buffer mask, trains
on seq-digits under a guard that fails on any device-to-host synchronisation during the trainer's step
(train_step: label counts, observe, the optimiser step): .item(), bool() or `if` on a tensor, int()/float(), .tolist(),
.cpu(), .numpy(), nonzero, boolean-mask indexing, masked_select, torch.unique, bincount and printing a
tensor. On a GPU each of these makes the step wait for the device instead of queueing work. Reads stay
allowed where the suite takes them on purpose: the non-finite check at the logging interval, and the
buffer's insertion while it fills (its first capacity / batch steps). The image datasets' training crop and
X-DER's strong views run under the guard too (datasets/augmentations.py applies kornia's draws on the
device)."""
import contextlib
import traceback

import pytest
import torch
from torch.overrides import TorchFunctionMode

from datasets.augmentations import ColorJiggleInOrder
from models import MODELS
from tests.helpers import model_flags, run_main
from tests.test_datasets import write_cifar10
from utils.core.buffer import Buffer
from utils.core.masks import MASKS
from utils.core.training import Trainer

SYNCING = {"item", "__bool__", "__int__", "__float__", "__index__", "__format__", "__repr__", "tolist", "cpu",
           "numpy", "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount"}


class HostSync(AssertionError):
    pass


class SyncGuard(TorchFunctionMode):
    """Raises HostSync on an operation that reads the device from the host, unless paused."""

    def __init__(self):
        super().__init__()
        self.paused = 0

    @contextlib.contextmanager
    def pause(self):
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not self.paused and syncs(func, args):
            raise HostSync(f"{getattr(func, '__name__', func)} in a training step:\n"
                           + "".join(traceback.format_stack(limit=8)[:-1]))
        return func(*args, **(kwargs or {}))


def syncs(func, args):
    name = getattr(func, "__name__", "")
    if name == "__getitem__":
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    if name == "where":
        return len(args) == 1
    return name in SYNCING


def test_the_guard_catches_each_kind_of_read():
    x = torch.arange(4.0)
    reads = [lambda: x.sum().item(), lambda: bool(x.sum()), lambda: x.tolist(), lambda: x[x > 1],
             lambda: torch.unique(x), lambda: x.nonzero(), lambda: torch.bincount(x.long()), lambda: f"{x[0]}",
             lambda: int(x[0]), lambda: torch.where(x > 1)]
    for read in reads:
        with pytest.raises(HostSync), SyncGuard():
            read()
    with SyncGuard():
        torch.where(x > 1, x, 0.0).index_add_(0, x.long(), x)


@pytest.fixture
def guarded(monkeypatch):
    guard = SyncGuard()

    def wrap(function, pause=lambda *args: False):
        def wrapper(*args, **kwargs):
            with guard.pause() if pause(*args) else contextlib.nullcontext():
                return function(*args, **kwargs)
        return wrapper

    def step(self, batch, bar):
        with guard:
            return real_step(self, batch, bar)
    real_step = Trainer.train_step
    monkeypatch.setattr(ColorJiggleInOrder, "forward", ColorJiggleInOrder.in_order)  # the path off the CPU
    monkeypatch.setattr(Trainer, "train_step", step)
    monkeypatch.setattr(Trainer, "check_finite", wrap(Trainer.check_finite, lambda self: True))
    monkeypatch.setattr(Buffer, "add", wrap(Buffer.add, lambda buffer, *rest: buffer.n_seen < buffer.capacity))
    return guard


FEW_STEPS = ["--n_epochs", "1", "--batch_size", "100", "--threads", "1"]  # 3 steps per task




@pytest.mark.parametrize("model", MODELS.names())
def test_no_model_or_mask_reads_the_host_in_a_step(tmp_path, guarded, model):
    for mask in MASKS.names():
        run_main(tmp_path, "--model", model, "--mask", mask, *model_flags(model), *FEW_STEPS, "--rerun")


@pytest.mark.parametrize("flags", [["--calibration", "wa"], ["--calibration", "bic"], ["--calibration", "posthoc_la"],
                                   ["--head", "rpc"], ["--head", "fno"], ["--mask", "ninf", "--mask_buffer"],
                                   ["--mask", "ninf", "--mask_scope", "ace"], ["--nan_policy", "skip"]])
def test_no_cure_reads_the_host_in_a_step(tmp_path, guarded, flags):
    run_main(tmp_path, "--model", "derpp", "--buffer_size", "20", *flags, *FEW_STEPS)


@pytest.mark.parametrize("model", ["derpp", "xder"])
def test_image_augmentations_do_not_read_the_host(tmp_path, guarded, model):
    """The random crop and flip of seq-cifar10's training batches, and X-DER's strong views of its images."""
    write_cifar10(tmp_path / "data", per_file=10)
    run_main(tmp_path, "--model", model, "--buffer_size", "10", "--dataset", "seq-cifar10", "--nf", "8",
             "--data_path", str(tmp_path / "data"), "--n_epochs", "1", "--batch_size", "16", "--threads", "1")
