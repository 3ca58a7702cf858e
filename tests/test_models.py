"""Each model's observe on hand-made tensors: one SGD step of a linear backbone equals the step of its
loss written out here independently (ER's row-weighted cross-entropy through the mask, DER's CE + α·MSE,
DER++'s + β·CE); joint's training indices; evaluate()'s Class-IL / Task-IL slicing; the registry's
duplicate-name error."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from datasets.base import Splits
from utils.core.evaluation import evaluate
from utils.core.training import training_indices
from utils.plumbing.cli import parse_args
from utils.plumbing.registry import Registry

LR, N_CLASSES = 0.1, 10
generator = torch.Generator().manual_seed(0)
IMAGES = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=generator)
LABELS = torch.arange(40) % N_CLASSES
SPLITS = Splits(IMAGES, LABELS, IMAGES, LABELS)
STREAM = [2, 3, 12]  # three stream rows of task 1 (classes 2, 3)
BUFFERED = [0, 1, 10, 11]  # four buffer rows of task 0
STORED = torch.randn(4, N_CLASSES, generator=generator)  # the logits the buffer holds for them


def build(name, *flags):
    """The model with a linear backbone at task 1, its buffer holding BUFFERED (drawn whole)."""
    args, model_cls, dataset_cls = parse_args(["--model", name, "--lr", str(LR), "--buffer_size", "4",
                                               "--minibatch_size", "4", *flags])
    dataset = dataset_cls(args)
    dataset.prepare("cpu", SPLITS)
    torch.manual_seed(0)
    model = model_cls(nn.Sequential(nn.Flatten(), nn.Linear(64, N_CLASSES)), args, dataset, "cpu")
    model.buffer.add(IMAGES[BUFFERED], LABELS[BUFFERED], STORED)
    model.begin_task(1, LABELS[STREAM])
    return model


def reference_step(model, loss_of):
    """The weights after one SGD step on loss_of(f), f the backbone's function written out by hand."""
    linear = model.net.net[1]
    weight, bias = linear.weight.detach().clone().requires_grad_(), linear.bias.detach().clone().requires_grad_()

    def f(indices):
        return (IMAGES[indices].float() / 255).flatten(1) @ weight.T + bias
    loss_of(f).backward()
    return weight - LR * weight.grad, bias - LR * bias.grad


def own_task_only(logits, labels):
    """The ninf mask with task scope: classes outside the row's task (2 classes each) at −∞."""
    same_task = torch.arange(N_CLASSES)[None, :] // 2 == labels[:, None] // 2
    return logits.masked_fill(~same_task, float("-inf"))


def assert_step(model, expected):
    model.observe(IMAGES[STREAM], LABELS[STREAM])
    linear = model.net.net[1]
    assert torch.allclose(linear.weight, expected[0], atol=1e-6) and torch.allclose(linear.bias, expected[1], atol=1e-6)


def test_er_weights_each_row_equally_over_stream_and_buffer():
    model = build("er", "--mask", "ninf")
    s, b = LABELS[STREAM], LABELS[BUFFERED]
    expected = reference_step(model, lambda f: (3 * F.cross_entropy(own_task_only(f(STREAM), s), s)
                                                + 4 * F.cross_entropy(f(BUFFERED), b)) / 7)
    assert_step(model, expected)


def test_der_adds_alpha_times_the_logit_mse():
    model = build("der", "--alpha", "0.5")
    s = LABELS[STREAM]
    expected = reference_step(model, lambda f: F.cross_entropy(f(STREAM), s)
                              + 0.5 * ((f(BUFFERED) - STORED) ** 2).mean())
    assert_step(model, expected)


def test_derpp_adds_beta_times_the_buffer_cross_entropy():
    model = build("derpp", "--alpha", "0.5", "--beta", "0.7", "--mask", "ninf")
    s, b = LABELS[STREAM], LABELS[BUFFERED]
    expected = reference_step(model, lambda f: F.cross_entropy(own_task_only(f(STREAM), s), s)
                              + 0.5 * ((f(BUFFERED) - STORED) ** 2).mean() + 0.7 * F.cross_entropy(f(BUFFERED), b))
    assert_step(model, expected)


@pytest.mark.parametrize("name,classes", [("joint", set(range(6))), ("er", {4, 5})])
def test_joint_trains_on_every_seen_task_and_the_others_on_the_current_one(name, classes):
    args, model_cls, dataset_cls = parse_args(["--model", name] + (["--buffer_size", "4"] if name == "er" else []))
    dataset = dataset_cls(args)
    dataset.prepare("cpu", SPLITS)
    model = model_cls(nn.Sequential(nn.Flatten(), nn.Linear(64, N_CLASSES)), args, dataset, "cpu")
    assert set(LABELS[training_indices(model, dataset, 2)].tolist()) == classes


class FixedLogits(nn.Module):
    """Logits looked up by the image's first pixel, which holds the image's row in `table`."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, images):
        return self.table[(images[:, 0, 0, 0] * 255).round().long()]


def test_evaluate_slices_class_il_over_seen_classes_and_task_il_within_the_task():
    args, _, dataset_cls = parse_args(["--model", "sgd"])
    dataset = dataset_cls(args)
    labels = torch.arange(20) % N_CLASSES
    images = torch.zeros(20, 1, 8, 8, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(20, dtype=torch.uint8)
    dataset.prepare("cpu", Splits(images, labels, images, labels))
    table = torch.randn(20, N_CLASSES, generator=generator)
    table[0] = torch.tensor([0.0, 1, 2, 3, 9, 0, 0, 0, 0, 0])  # label 0: wrong everywhere but among {0, 1}: 1
    table[10, 0] = 50.0  # label 0: right
    class_il, task_il, _ = evaluate(FixedLogits(table), dataset, last_trained=1)
    for task in range(2):
        rows = [i for i in range(20) if labels[i] // 2 == task]
        seen = table[rows][:, :4].argmax(1)  # classes of tasks 0 and 1
        own = table[rows][:, 2 * task:2 * task + 2].argmax(1) + 2 * task
        assert class_il[task] == 100 * float((seen == labels[rows]).float().mean())
        assert task_il[task] == 100 * float((own == labels[rows]).float().mean())
    assert class_il[2:] == [None] * 3 and task_il[2:] == [None] * 3


def test_a_name_registered_twice_is_an_error():
    registry = Registry("thing", "models")

    class First:
        pass

    class Second:
        pass
    registry.register("twice")(First)
    with pytest.raises(ValueError, match="thing 'twice' is registered twice"):
        registry.register("twice")(Second)


def test_ssil_separates_the_softmaxes_and_distils_each_past_task_from_the_teacher():
    model = build("ssil", "--kd_temperature", "2")
    teacher = model.teacher.net[1]
    with torch.no_grad():
        teacher.weight.add_(0.3 * torch.randn(teacher.weight.shape, generator=generator))
    t_weight, t_bias = teacher.weight.detach().clone(), teacher.bias.detach().clone()
    s, b = LABELS[STREAM], LABELS[BUFFERED]

    def loss_of(f):
        ce = (3 * F.cross_entropy(f(STREAM)[:, 2:4], s - 2) + 4 * F.cross_entropy(f(BUFFERED)[:, :2], b)) / 7
        rows = STREAM + BUFFERED
        student = f(rows)[:, :2] / 2
        teacher_logits = ((IMAGES[rows].float() / 255).flatten(1) @ t_weight.T + t_bias)[:, :2] / 2
        p = teacher_logits.softmax(1)
        kd = (p * (p.log() - student.log_softmax(1))).sum(1).mean() * 4
        return ce + kd
    expected = reference_step(model, loss_of)
    assert_step(model, expected)
    assert torch.equal(teacher.weight, t_weight)  # the teacher never trains


def test_ssil_memory_holds_an_equal_share_of_every_class_seen_and_replays_a_quarter_batch():
    args, model_cls, dataset_cls = parse_args(["--model", "ssil", "--buffer_size", "8", "--batch_size", "32"])
    assert args.minibatch_size == 8  # a quarter of the stream batch
    dataset = dataset_cls(args)
    dataset.prepare("cpu", SPLITS)
    model = model_cls(nn.Sequential(nn.Flatten(), nn.Linear(64, N_CLASSES)), args, dataset, "cpu")
    for task in range(2):
        indices = dataset.task_indices(task)
        model.end_task(task, IMAGES[indices], LABELS[indices])
    held = model.buffer.labels[:model.buffer.size].tolist()
    assert model.buffer.size == 8 and sorted(held) == [0, 0, 1, 1, 2, 2, 3, 3]
