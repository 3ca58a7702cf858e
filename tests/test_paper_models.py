"""The masking paper's own models (ermr, derppmr and their FNO-head variants) on hand-made tensors, against
what the authors' Mammoth fork does (khyong/FNO-classifier, fno_contid/models): ermr's loss is the sum of
the two mean cross-entropies of separate forwards; derppmr's buffer keeps the logits of a forward after the
step; the stream mask keeps the classes the fork's rule keeps; --config best takes the fork's entries."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from datasets.base import Splits
from tests.test_models import (
    BUFFERED,
    IMAGES,
    LABELS,
    LR,
    N_CLASSES,
    STORED,
    STREAM,
    assert_step,
    build,
    own_task_only,
    reference_step,
)
from utils.core.masks.base import build_mask
from utils.core.masks.functional import SCOPES, Position, label_kept, masked_logits
from utils.plumbing.cli import parse_args
from utils.reference.configs import config_source


def fork_rule(logits, labels, classes_per_task):
    """The fork's masking(): row i keeps classes (y_i // k)·k … (y_i // k)·k + k − 1, the rest −∞."""
    out = logits.clone()
    for row, label in enumerate(labels.tolist()):
        first = label // classes_per_task * classes_per_task
        for c in range(out.shape[1]):
            if not first <= c < first + classes_per_task:
                out[row, c] = float("-inf")
    return out


@pytest.mark.parametrize("classes_per_task", [2, 10, 20])
def test_the_stream_mask_keeps_the_classes_of_the_forks_rule(classes_per_task):
    n_classes = 5 * classes_per_task
    generator = torch.Generator().manual_seed(classes_per_task)
    labels = torch.randint(0, n_classes, (64,), generator=generator)
    logits = torch.randn(64, n_classes, generator=generator)
    position = Position(task=4, classes_per_task=classes_per_task, n_classes=n_classes, seen=None)
    keep = label_kept(SCOPES["task"](labels, position), labels)
    assert torch.equal(masked_logits(logits, keep, build_mask("ninf")),
                       fork_rule(logits, labels, classes_per_task))


@pytest.mark.parametrize("name,head", [("ermr", "linear"), ("derppmr", "linear"),
                                       ("orthermr", "fno"), ("orthderppmr", "fno")])
def test_the_authors_models_default_to_the_ninf_mask_on_each_rows_task_and_their_head(name, head):
    args, _, _ = parse_args(["--model", name, "--buffer_size", "10"])
    assert (args.mask, args.mask_scope, args.head) == ("ninf", "task", head)


def test_ermr_sums_the_mean_cross_entropies_of_the_stream_and_the_buffer():
    model = build("ermr")
    s, b = LABELS[STREAM], LABELS[BUFFERED]
    expected = reference_step(model, lambda f: F.cross_entropy(own_task_only(f(STREAM), s), s)
                              + F.cross_entropy(f(BUFFERED), b))
    assert_step(model, expected)


@pytest.mark.parametrize("name,batches", [("ermr", [3, 4]), ("er", [7])])
def test_ermr_forwards_the_stream_and_the_buffer_separately(name, batches):
    model = build(name)
    sizes = []
    model.net.register_forward_hook(lambda module, inputs, output: sizes.append(len(output)))
    model.observe(IMAGES[STREAM], LABELS[STREAM])
    assert sizes == batches


def derppmr_with_room():
    """derppmr at task 1 whose buffer has room for the stream batch (so all of it is stored)."""
    args, model_cls, dataset_cls = parse_args(["--model", "derppmr", "--lr", str(LR), "--buffer_size", "8",
                                               "--minibatch_size", "4"])
    dataset = dataset_cls(args)
    dataset.prepare("cpu", Splits(IMAGES, LABELS, IMAGES, LABELS))
    torch.manual_seed(0)
    model = model_cls(nn.Sequential(nn.Flatten(), nn.Linear(64, N_CLASSES)), args, dataset, "cpu")
    model.buffer.add(IMAGES[BUFFERED], LABELS[BUFFERED], STORED)
    model.begin_task(1, LABELS[STREAM])
    return model


def test_derppmr_stores_the_logits_of_a_forward_after_the_step():
    model = derppmr_with_room()
    stream = model.normalize(IMAGES[STREAM])
    with torch.no_grad():
        before = model.net(stream)
    model.observe(IMAGES[STREAM], LABELS[STREAM])
    with torch.no_grad():
        after = model.net(stream)
    stored = model.buffer.logits[len(BUFFERED):len(BUFFERED) + len(STREAM)]
    assert torch.allclose(stored, after, atol=1e-6)
    assert not torch.allclose(stored, before, atol=1e-3)


def test_derppmr_steps_as_masked_derpp():
    model = build("derppmr", "--alpha", "0.5", "--beta", "0.7")
    s, b = LABELS[STREAM], LABELS[BUFFERED]
    expected = reference_step(model, lambda f: F.cross_entropy(own_task_only(f(STREAM), s), s)
                              + 0.5 * ((f(BUFFERED) - STORED) ** 2).mean() + 0.7 * F.cross_entropy(f(BUFFERED), b))
    assert_step(model, expected)


@pytest.mark.parametrize("name", ["ermr", "orthermr"])
def test_config_best_takes_the_forks_entry_of_its_base_model(name):
    args, model_cls, _ = parse_args(["--model", name, "--dataset", "seq-mnist", "--buffer_size", "200", "--config",
                                     "best", "--data_path", "data"])
    assert (args.lr, args.batch_size, args.minibatch_size, args.n_epochs) == (0.01, 10, 10, 1)
    assert "khyong/FNO-classifier" in config_source(args, model_cls.CONFIG_NAME)
