"""A-GEM, A-GEM-R and GDumb: A-GEM's projection against its formula on hand-made vectors and inside one SGD step of a
linear backbone; its task-end memory; GDumb's greedy memory against a direct loop of the greedy rule, its fresh
network at each task end, its lr schedule against torch's warm restarts driven as Mammoth drives them, its CutMix and
its masked memory cross-entropy; runs on seq-digits under a few masks, and a run resumed mid-way."""
import pytest
import torch
import torch.nn.functional as F

from models import MODELS
from models.agem import project
from models.gdumb import GreedyMemory, cutmix, warm_restart_lr
from tests.helpers import all_finite, build_model, interrupt_then_resume, read_records, run_main
from tests.test_models import BUFFERED, IMAGES, LABELS, LR, STREAM, build, own_task_only
from utils.plumbing.cli import parse_args
from utils.plumbing.parser import FlagError


def direct_projection(g, r):
    """g − (g·r / r·r) r where g·r < 0, else g, written out on Python floats."""
    dot = sum(a * b for a, b in zip(g, r))
    if dot >= 0:
        return list(g)
    scale = dot / sum(b * b for b in r)
    return [a - scale * b for a, b in zip(g, r)]


@pytest.mark.parametrize("g, r", [([1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]),  # g·r = −2: projected
                                  ([3.0, 0.0, -1.0, 2.0], [-0.5, 4.0, 1.0, -0.25])])  # g·r = −3: projected
def test_a_conflicting_gradient_is_projected_onto_the_references_normal_plane(g, r):
    projected, violated = project(torch.tensor(g, dtype=torch.float64), torch.tensor(r, dtype=torch.float64))
    assert bool(violated)
    assert projected.tolist() == pytest.approx(direct_projection(g, r), abs=1e-12)
    assert float(projected @ torch.tensor(r, dtype=torch.float64)) >= -1e-12


@pytest.mark.parametrize("g, r", [([1.0, 2.0, 0.5], [1.0, 1.0, -2.0]),  # g·r = 2
                                  ([1.0, 1.0], [1.0, -1.0]),  # g·r = 0
                                  ([1.0, -1.0], [0.0, 0.0])])  # no reference direction
def test_an_agreeing_gradient_is_left_as_it_is(g, r):
    projected, violated = project(torch.tensor(g), torch.tensor(r))
    assert not bool(violated) and projected.tolist() == g == direct_projection(g, r)


def linear_weights(model):
    linear = model.net.net[1]
    return linear.weight.detach().clone().requires_grad_(), linear.bias.detach().clone().requires_grad_()


@pytest.mark.parametrize("name", ["agem", "agem_r"])
@pytest.mark.parametrize("mask", ["none", "ninf"])
def test_the_step_is_sgd_on_the_projected_stream_gradient(name, mask):
    model = build(name, "--mask", mask)
    weight, bias = linear_weights(model)

    def f(indices):
        return (IMAGES[indices].float() / 255).flatten(1) @ weight.T + bias
    s, b = LABELS[STREAM], LABELS[BUFFERED]
    stream_logits = own_task_only(f(STREAM), s) if mask == "ninf" else f(STREAM)
    g = torch.cat([t.flatten() for t in torch.autograd.grad(F.cross_entropy(stream_logits, s), [weight, bias])])
    r = torch.cat([t.flatten() for t in torch.autograd.grad(F.cross_entropy(f(BUFFERED), b), [weight, bias])])
    if mask == "none":
        assert g @ r < 0  # the case the projection exists for
    update = torch.tensor(direct_projection(g.tolist(), r.tolist()))
    model.observe(IMAGES[STREAM], LABELS[STREAM])
    linear = model.net.net[1]
    assert torch.allclose(linear.weight, weight - LR * update[:weight.numel()].view_as(weight), atol=1e-6)
    assert torch.allclose(linear.bias, bias - LR * update[weight.numel():], atol=1e-6)


def test_agem_keeps_buffer_size_over_n_tasks_random_samples_of_each_task():
    model = build("agem", "--buffer_size", "23", "--minibatch_size", "4")  # 23 // 5 tasks = 4 each
    model.buffer.keep_only(torch.arange(0))
    for task in range(3):
        indices = torch.nonzero(LABELS // 2 == task).flatten()
        model.end_task(task, IMAGES[indices], LABELS[indices])
        assert model.buffer.size == 4 * (task + 1)
        added = model.buffer.images[4 * task:4 * (task + 1)]
        assert set((model.buffer.labels[4 * task:4 * (task + 1)] // 2).tolist()) == {task}
        matches = (added[:, None] == IMAGES[indices][None]).flatten(2).all(2)  # [4, task's images]
        assert matches.any(1).all() and len(set(matches.int().argmax(1).tolist())) == 4  # its images, no repeats


def greedy_counts(labels, capacity):
    """The greedy rule written as a loop over a dict in order of entry: an item enters if its class is new or holds
    fewer than capacity // (classes held); when full, the largest class (the first such) loses one."""
    counts = {}
    for label in labels:
        if label not in counts or counts[label] < capacity // len(counts):
            if sum(counts.values()) >= capacity:
                largest = max(counts, key=counts.get)
                counts[largest] -= 1
            counts[label] = counts.get(label, 0) + 1
    return counts


def fill(labels, capacity, batch, n_classes=6):
    """A GreedyMemory fed `labels` in batches of `batch`; each image holds its index in the stream."""
    memory = GreedyMemory(capacity, "cpu", n_classes)
    labels = torch.tensor(labels)
    images = torch.arange(len(labels)).view(-1, 1, 1, 1)
    for start in range(0, len(labels), batch):
        memory.add(images[start:start + batch], labels[start:start + batch])
    return memory, labels


@pytest.mark.parametrize("stream, capacity, batch", [
    ([0] * 10 + [1] * 10 + [2] * 10, 12, 4),  # one class after another
    ([5] * 4 + [3] * 4 + [1] * 3 + [4] * 5 + [2] * 3 + [0] * 4, 9, 4),  # ties: the class that entered first loses
    ([0, 0, 1, 0, 0, 0, 2, 0, 1, 3, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 4, 4, 0, 4, 4, 4, 4, 5, 5, 5, 5, 5, 2, 2], 10, 3),
])
def test_the_greedy_memory_is_what_the_greedy_rule_keeps_and_balanced(stream, capacity, batch):
    memory, labels = fill(stream, capacity, batch)
    expected = greedy_counts(stream, capacity)
    held = memory.labels[:memory.size]
    assert memory.size == sum(expected.values())
    assert {c: int((held == c).sum()) for c in expected} == expected
    assert max(expected.values()) - min(expected.values()) <= 1
    origin = memory.images[:memory.size].flatten()
    assert len(set(origin.tolist())) == memory.size and torch.equal(labels[origin], held)  # stream items, each once


def test_the_greedy_memory_matches_the_rule_on_a_random_stream():
    generator = torch.Generator().manual_seed(3)
    stream = torch.multinomial(torch.tensor([6.0, 1, 3, 1, 8, 2]), 300, replacement=True, generator=generator)
    memory, _ = fill(stream.tolist(), 17, 7)
    expected = greedy_counts(stream.tolist(), 17)
    assert memory.class_counts(6).tolist() == [expected.get(c, 0) for c in range(6)]
    assert torch.equal(torch.bincount(memory.labels[:memory.size], minlength=6), memory.class_counts(6))


def test_mammoths_lr_schedule_is_warm_up_then_warm_restarts():
    maxlr, minlr = 0.05, 0.0005
    parameter = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([parameter], lr=maxlr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=2, eta_min=minlr)
    for epoch in range(40):  # Mammoth's fit_buffer
        if epoch == 0:
            opt.param_groups[0]["lr"] = maxlr * 0.1
        elif epoch == 1:
            opt.param_groups[0]["lr"] = maxlr
        else:
            scheduler.step()
        assert warm_restart_lr(epoch, maxlr, minlr) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()


def test_cutmix_pastes_one_box_of_the_partner_and_weighs_by_the_area_left():
    torch.manual_seed(0)
    images = torch.arange(16.0).view(16, 1, 1, 1).expand(16, 1, 10, 10).contiguous()
    labels = torch.arange(16)
    for _ in range(5):
        mixed, partners, lam = cutmix(images, labels, 1.0, chance=1.0)
        assert torch.equal(images, torch.arange(16.0).view(16, 1, 1, 1).expand(16, 1, 10, 10))  # input untouched
        pasted = mixed[:, 0] != images[:, 0]
        rows = partners != labels
        assert rows.any()
        for i in torch.nonzero(rows).flatten().tolist():
            assert torch.equal(mixed[i, 0][pasted[i]], torch.full((int(pasted[i].sum()),), float(partners[i])))
            assert float(pasted[i].float().mean()) == pytest.approx(1 - lam)
            box = torch.nonzero(pasted[i])
            height, width = (box.max(0).values - box.min(0).values + 1).tolist() if len(box) else (0, 0)
            assert height * width == int(pasted[i].sum())  # a rectangle
    assert cutmix(images, labels, 1.0, chance=0.0) == (images, labels, 1.0)


@pytest.mark.parametrize("mask", ["none", "ninf"])
def test_the_memory_cross_entropy_keeps_each_rows_own_task(mask):
    model = build("gdumb", "--mask", mask)
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 5, 9, 2, 7])
    expected = F.cross_entropy(own_task_only(logits, labels) if mask == "ninf" else logits, labels)
    assert torch.allclose(model.memory_loss(logits, labels, labels, 1.0), expected)


def test_a_cutmix_row_keeps_the_tasks_of_both_its_labels():
    model = build("gdumb", "--mask", "ninf")
    logits = torch.randn(4, 10, generator=torch.Generator().manual_seed(2))
    labels, partners = torch.tensor([0, 3, 5, 9]), torch.tensor([4, 3, 1, 8])
    kept = [{0, 1, 4, 5}, {2, 3}, {4, 5, 0, 1}, {8, 9}]
    masked = torch.stack([torch.where(torch.tensor([c in row for c in range(10)]), z, float("-inf"))
                          for z, row in zip(logits, kept)])
    expected = 0.3 * F.cross_entropy(masked, labels) + 0.7 * F.cross_entropy(masked, partners)
    assert torch.allclose(model.memory_loss(logits, labels, partners, 0.3), expected)


def test_a_gdumb_stream_step_trains_nothing_and_fills_the_memory():
    model = build("gdumb")
    before = [p.detach().clone() for p in model.net.parameters()]
    model.train_step(IMAGES[STREAM], LABELS[STREAM])
    assert all(torch.equal(a, b) for a, b in zip(before, model.net.parameters()))
    assert model.online_seen[1] == 3 and model.buffer.size == 4  # full (4 held): the new classes took slots
    assert model.buffer.class_counts(10).tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_each_task_end_trains_a_fresh_network_on_the_memory():
    model, dataset = build_model("--model", "gdumb", "--buffer_size", "20", "--fitting_epochs", "2",
                                 "--batch_size", "10")
    images, labels = dataset.splits.train_images, dataset.splits.train_labels
    starts = []
    real_step = model.memory_step

    def first_state_then_step(*args):
        if len(starts) < model.task + 1:
            starts.append({k: v.clone() for k, v in model.net.net.state_dict().items()})
        return real_step(*args)
    model.memory_step = first_state_then_step
    for task in range(2):
        indices = dataset.task_indices(task)
        model.begin_task(task, labels[indices])
        for batch in indices[:60].split(10):
            model.train_step(images[batch], labels[batch])
        trained = {k: v.clone() for k, v in model.net.net.state_dict().items()}
        torch.manual_seed(11 + task)
        model.end_task(task, images[indices], labels[indices])
        fresh = dataset.get_backbone()
        torch.manual_seed(11 + task)
        fresh.reset_parameters()
        assert all(torch.equal(starts[task][k], v) for k, v in fresh.state_dict().items())
        assert all(not torch.equal(starts[task][k], v) for k, v in trained.items() if k.endswith("weight"))
        assert all(not torch.equal(starts[task][k], v) for k, v in model.net.net.state_dict().items()
                   if k.endswith("weight"))  # and then trained


def test_resnet_reset_is_its_constructors_initialisation():
    from backbone.resnet18 import ResNet18

    torch.manual_seed(5)
    built = ResNet18(10, nf=4)
    used = ResNet18(10, nf=4)
    used.train()
    used(torch.randn(3, 3, 8, 8))  # moves BatchNorm's running statistics
    with torch.no_grad():
        for p in used.parameters():
            p.add_(1.0)
    torch.manual_seed(5)
    used.reset_parameters()
    assert all(torch.equal(v, used.state_dict()[k]) for k, v in built.state_dict().items())


@pytest.mark.parametrize("flags", [["--model", "agem", "--buffer_policy", "balanced"],
                                   ["--model", "gdumb", "--buffer_policy", "balanced"],
                                   ["--model", "gdumb", "--mask_buffer"]])
def test_what_these_models_cannot_take_is_refused(flags):
    with pytest.raises(FlagError):
        parse_args([*flags, "--buffer_size", "10"], raise_errors=True)


def test_gdumb_passes_over_the_stream_once_unless_told():
    args, _, _ = parse_args(["--model", "gdumb", "--buffer_size", "10", "--dataset", "seq-cifar10"])
    assert args.n_epochs == 1 and args.sampler == "greedy" and args.cutmix_alpha == 1.0
    assert parse_args(["--model", "agem", "--buffer_size", "10", "--dataset", "seq-cifar10"])[0].n_epochs == 50


FEW = ["--n_epochs", "1", "--batch_size", "100", "--buffer_size", "20", "--threads", "1"]


@pytest.mark.parametrize("mask", ["ninf", "balanced", "las"])
@pytest.mark.parametrize("model", ["agem", "agem_r", "gdumb"])
def test_each_model_runs_under_the_mask(tmp_path, model, mask):
    own = ["--fitting_epochs", "2"] if model == "gdumb" else []
    record = run_main(tmp_path, "--model", model, "--mask", mask, *FEW, *own)
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])
    assert len(record["class_il"]["matrix"]) == 5 and record["online_accuracy"]["mean"] is not None
    if model != "gdumb":
        assert all("agem/projected" in task for task in record["diagnostics"][1:])


@pytest.mark.parametrize("model, flags", [("agem", ["--mask", "las"]), ("agem_r", ["--mask", "ninf"]),
                                          ("gdumb", ["--mask", "balanced", "--fitting_epochs", "3"])])
def test_a_run_interrupted_mid_task_resumes_to_the_same_matrix(tmp_path, monkeypatch, model, flags):
    flags = ["--model", model, "--buffer_size", "20", "--n_epochs", "1", "--quiet", "--threads", "1", *flags]
    whole = run_main(tmp_path / "whole", *flags)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, MODELS.get(model), 70, resumed) == 0
    record = read_records(tmp_path / "resumed")[-1]
    assert record["class_il"]["matrix"] == whole["class_il"]["matrix"]
    assert record["task_il"]["matrix"] == whole["task_il"]["matrix"]
