"""LwF, online EWC and SI: each one's own term against a direct formula or an independent computation on
hand-made tensors or a tiny network; each trains on seq-digits under a couple of masks; a run interrupted mid-task
resumes to the same matrix."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.lwf import distillation
from tests.helpers import all_finite, build_model, interrupt_then_resume, read_records, run_main

FEW_STEPS = ["--n_epochs", "1", "--batch_size", "100"]


class Tiny(nn.Module):
    """A small backbone with the suite's features / classifier layout: 64 pixels, `hidden` ReLU units (none: a
    linear softmax model), 10 classes."""

    def __init__(self, hidden=None, scale=1.0):
        super().__init__()
        layers = [nn.Flatten()] + ([] if hidden is None else [nn.Linear(64, hidden), nn.ReLU()])
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(64 if hidden is None else hidden, 10)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.mul_(scale)

    def forward(self, x):
        return self.classifier(self.features(x))


def task_data(dataset, task, count=None):
    indices = dataset.task_indices(task)[:count]
    return dataset.splits.train_images[indices], dataset.splits.train_labels[indices]


def mammoth_smooth(probabilities, temperature):
    """Mammoth's smooth(): p^(1/T) renormalised."""
    powered = probabilities ** (1 / temperature)
    return powered / powered.sum(1, keepdim=True)


def test_lwf_distillation_is_mammoths_modified_kl_div_of_smoothed_softmaxes():
    old = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    new = torch.tensor([[1.0, 0.0, -1.0], [-0.5, 1.5, 2.5]])
    for temperature in (1.0, 2.0, 3.5):
        q = mammoth_smooth(F.softmax(old, 1), temperature)
        p = mammoth_smooth(F.softmax(new, 1), temperature)
        expected = -(q * p.log()).sum(1).mean()
        assert torch.allclose(distillation(old, new, temperature), expected, atol=1e-6)
    assert not torch.allclose(distillation(old, new, 2.0), distillation(new, old, 2.0))


def test_lwf_warm_up_trains_the_new_head_alone_then_its_step_distils_from_that_network():
    model, dataset = build_model("--model", "lwf", "--alpha", "0.7", "--softmax_temp", "3", "--wd_reg", "0.01",
                                 "--lr", "0.2", "--batch_size", "32", "--n_epochs", "2",
                                 backbone=Tiny(hidden=16))
    images, labels = task_data(dataset, 1)
    reference = copy.deepcopy(model.net.net)
    model.begin_task(1, labels)
    state = torch.get_rng_state()
    model.prepare_task(1, images, labels)
    torch.set_rng_state(state)
    weight, bias = reference.classifier.weight.detach().clone(), reference.classifier.bias.detach().clone()
    features = reference.features(images.float() / 255).detach()
    for _ in range(2):
        for batch in torch.randperm(len(labels)).split(32):
            w, b = weight[2:4].requires_grad_(), bias[2:4].requires_grad_()
            loss = F.cross_entropy(features[batch] @ w.T + b, labels[batch] - 2)
            grad_w, grad_b = torch.autograd.grad(loss, (w, b))
            weight[2:4], bias[2:4] = w.detach() - 0.2 * grad_w, b.detach() - 0.2 * grad_b
    net = model.net.net
    assert torch.allclose(net.classifier.weight, weight, atol=1e-6)
    assert torch.allclose(net.classifier.bias, bias, atol=1e-6)
    assert not torch.equal(net.classifier.weight[2:4], reference.classifier.weight[2:4])
    for ours, theirs in zip(net.features.parameters(), reference.features.parameters()):
        assert torch.equal(ours, theirs)
    for name, tensor in model.net.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[name], tensor)

    terms = {}
    model.step = lambda step_terms, logits, step_labels: terms.update(step_terms)
    batch = images[:10]
    with torch.no_grad():
        teacher = net(batch.float() / 255)[:, :2]
    model.train_step(batch, labels[:10])
    with torch.no_grad():
        student = net(batch.float() / 255)[:, :2]
        weights = sum(p.square().sum() for p in net.parameters())
    assert torch.allclose(terms["kd"], 0.7 * distillation(teacher, student, 3.0))
    assert torch.allclose(terms["wd"], 0.01 * weights)
    assert set(terms) == {"ce", "kd", "wd"}


def test_ewc_penalty_is_the_fisher_weighted_squared_distance():
    model, _ = build_model("--model", "ewc_on", "--e_lambda", "3", backbone=Tiny())
    generator = torch.Generator().manual_seed(1)
    fisher, anchor = torch.rand(650, generator=generator), torch.randn(650, generator=generator)
    model.fisher.copy_(fisher)
    model.anchor.copy_(anchor)
    weight, bias = model.net.net.classifier.weight, model.net.net.classifier.bias
    expected = ((fisher[:640].view(10, 64) * (weight - anchor[:640].view(10, 64)) ** 2).sum()
                + (fisher[640:] * (bias - anchor[640:]) ** 2).sum())
    assert torch.allclose(model.penalty(), expected)


def linear_softmax_fisher(weight, bias, images, labels, batch_size):
    """Σ_i p_y (∂ log p_y / ∂θ)² of a linear softmax model in closed form, ∂/∂W = (e_y − p) xᵀ, ∂/∂b = e_y − p,
    divided by ⌈N / B⌉ · B; flattened as (W, b)."""
    x = images.double().flatten(1) / 255
    p = torch.softmax(x @ weight.double().T + bias.double(), 1)
    residual = F.one_hot(labels, 10).double() - p
    p_true = p[torch.arange(len(labels)), labels]
    per_weight = (p_true[:, None, None] * (residual[:, :, None] * x[:, None, :]) ** 2).sum(0)
    per_bias = (p_true[:, None] * residual ** 2).sum(0)
    batches = -(-len(labels) // batch_size)
    return torch.cat([per_weight.flatten(), per_bias]) / (batches * batch_size)


def test_ewc_fisher_after_each_task_is_the_closed_form_of_a_linear_softmax_model():
    model, dataset = build_model("--model", "ewc_on", "--gamma", "0.5", "--batch_size", "3", backbone=Tiny())
    classifier = model.net.net.classifier
    images, labels = task_data(dataset, 0, 7)
    first = linear_softmax_fisher(classifier.weight, classifier.bias, images, labels, 3)
    model.end_task(0, images, labels)
    assert torch.allclose(model.fisher.double(), first, rtol=1e-4, atol=1e-9)
    with torch.no_grad():
        classifier.weight.add_(0.3)
    images, labels = task_data(dataset, 1, 5)
    second = linear_softmax_fisher(classifier.weight, classifier.bias, images, labels, 3)
    model.end_task(1, images, labels)
    assert torch.allclose(model.fisher.double(), 0.5 * first + second, rtol=1e-4, atol=1e-9)
    assert torch.equal(model.anchor[:640], classifier.weight.detach().flatten())


def si_by_hand(net, tasks, lr, c, xi):
    """Ω after each task of plain SGD on CE + c·Σ Ω (θ − θ*)², the gradient clipped to [−1, 1], ω += lr · g²;
    and whether any gradient was clipped."""
    parameters = list(net.parameters())
    anchor = [p.detach().clone() for p in parameters]
    omega = [torch.zeros_like(p) for p in parameters]
    history, clipped = [], False
    for batches in tasks:
        path = [torch.zeros_like(p) for p in parameters]
        for images, labels in batches:
            loss = F.cross_entropy(net(images.float() / 255), labels)
            loss = loss + c * sum((o * (p - a) ** 2).sum() for o, p, a in zip(omega, parameters, anchor))
            for p, g, w in zip(parameters, torch.autograd.grad(loss, parameters), path):
                clipped |= bool((g.abs() > 1).any())
                g = g.clamp(-1, 1)
                w += lr * g ** 2
                with torch.no_grad():
                    p -= lr * g
        for p, a, o, w in zip(parameters, anchor, omega, path):
            o += w / ((p.detach() - a) ** 2 + xi)
            a.copy_(p.detach())
        history.append(torch.cat([o.flatten() for o in omega]))
    return history, clipped


def test_si_importance_after_two_tasks_matches_an_independent_loop():
    torch.manual_seed(0)
    flags = ["--model", "si", "--c", "50", "--xi", "0.2", "--lr", "0.3", "--batch_size", "20"]
    model, dataset = build_model(*flags, backbone=Tiny(hidden=8, scale=3.0))
    twin = copy.deepcopy(model.net.net)
    tasks = []
    for task in range(2):
        images, labels = task_data(dataset, task, 60)
        tasks.append(list(zip(images.split(20), labels.split(20))))
    history, clipped = si_by_hand(twin, tasks, 0.3, 50.0, 0.2)
    assert clipped
    for task, batches in enumerate(tasks):
        model.begin_task(task, torch.cat([labels for _, labels in batches]))
        for images, labels in batches:
            model.train_step(images, labels)
        model.end_task(task, None, None)
        assert torch.allclose(model.omega, history[task], rtol=1e-4, atol=1e-7)
    assert torch.count_nonzero(model.path) == 0


@pytest.mark.parametrize("mask", ["ninf", "lode"])
@pytest.mark.parametrize("model", ["lwf", "ewc_on", "si"])
def test_each_model_trains_under_masks(tmp_path, model, mask):
    record = run_main(tmp_path, "--model", model, "--mask", mask, *FEW_STEPS)
    assert record["model"] == model and record["mask"] == mask
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])


@pytest.mark.parametrize("model", ["lwf", "ewc_on", "si"])
def test_a_run_interrupted_mid_task_resumes_to_the_same_matrix(tmp_path, monkeypatch, model):
    from models import MODELS

    flags = ["--model", model, "--n_epochs", "1", "--batch_size", "50", "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, MODELS.get(model), 15, resumed) == 0
    record = read_records(tmp_path / "resumed")[-1]
    assert record["class_il"]["matrix"] == whole["class_il"]["matrix"]
    assert record["diagnostics"] == whole["diagnostics"]  # the mean of each loss term over each task, exactly
