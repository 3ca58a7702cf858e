"""iCaRL and LUCIR against direct formulas: iCaRL's sigmoid loss with distillation (Mammoth's at --mask none, and
what a mask takes out), herding, the class-balanced memory and the nearest-mean-of-exemplars prediction; LUCIR's
cosine head, its three loss terms as one step computes them, the imprinting and the finetuning; the exemplars
joined to a task's data; runs under a few masks, a resumed run and the refusals."""
import math

import pytest
import torch
import torch.nn.functional as F

import main
from models.icarl import ICarl, herding
from models.lucir import Lucir, less_forget, margin_ranking
from tests.helpers import all_finite, build_model, interrupt_then_resume, read_records, run_main

FEW_STEPS = ("--n_epochs", "1", "--batch_size", "100", "--buffer_size", "20", "--threads", "1")
# 3 rows at task 1 of 5 × 2 classes: two of the current task (2, 3), one exemplar of class 0
LOGITS = torch.tensor([[0.3, -1.2, 2.0, -0.4, 0.9, 0.1, -0.3, 0.5, 1.1, -2.0],
                       [-0.7, 0.4, -0.2, 1.5, 0.0, 0.8, -1.1, 0.2, 0.6, 0.3],
                       [1.8, -0.5, 0.7, 0.2, -0.9, 0.4, 0.3, -0.6, 0.1, 1.2]], dtype=torch.float64)
OLD_LOGITS = torch.tensor([[1.0, -2.0, 0.5, 0.3, 0.0, 0.2, -0.1, 0.4, 0.7, -0.5],
                           [-0.3, 0.6, 0.1, -0.8, 0.9, 0.0, 0.5, -0.2, 0.3, 0.8],
                           [2.2, -1.0, -0.4, 0.6, 0.1, -0.3, 0.2, 0.9, -0.7, 0.4]], dtype=torch.float64)
LABELS = torch.tensor([2, 3, 0])


def mammoth_bce(logits, labels, old_logits, task, classes_per_task=2):
    """Mammoth's neurips2020 `get_loss`, with its own direct `binary_cross_entropy`: the mean over rows × seen
    classes of −(y log p + (1 − y) log(1 − p)), p = σ(z), y the previous network's σ on the old classes and the
    one-hot label on the current task's."""
    past, seen = task * classes_per_task, (task + 1) * classes_per_task
    targets = torch.eye(logits.shape[1], dtype=logits.dtype)[labels][:, past:seen]
    targets = torch.cat([torch.sigmoid(old_logits[:, :past]), targets], dim=1)
    p = torch.sigmoid(logits[:, :seen])
    return -(p.log() * targets + (1 - targets) * (1 - p).log()).mean()


def icarl_at(task, *flags):
    model, dataset = build_model("--model", "icarl", "--buffer_size", "20", *flags)
    model.task = task
    return model, dataset


@pytest.mark.parametrize("task", [0, 1])
def test_icarls_loss_at_mask_none_is_mammoths_bce_with_distillation(task):
    model, _ = icarl_at(task)
    terms = model.classification_terms(LOGITS, LABELS, OLD_LOGITS if task else None)
    assert set(terms) == ({"ce", "kd"} if task else {"ce"})
    expected = mammoth_bce(LOGITS, LABELS, OLD_LOGITS, task)
    assert sum(terms.values()).item() == pytest.approx(expected.item(), rel=1e-12)


def test_ninf_takes_the_current_classes_out_of_an_exemplars_loss_and_leaves_the_distillation():
    model, _ = icarl_at(1, "--mask", "ninf")
    z = LOGITS.clone().requires_grad_(True)
    terms = model.classification_terms(z, LABELS, OLD_LOGITS)
    p, t_old = torch.sigmoid(LOGITS), torch.sigmoid(OLD_LOGITS)
    bce = lambda q, y: -(y * math.log(q) + (1 - y) * math.log(1 - q))  # noqa: E731
    ce = sum(bce(p[i, j].item(), float(LABELS[i] == j)) for i in range(2) for j in (2, 3))  # current rows only
    kd = sum(bce(p[i, j].item(), t_old[i, j].item()) for i in range(3) for j in (0, 1))
    assert terms["ce"].item() == pytest.approx(ce / 12, rel=1e-12)
    assert terms["kd"].item() == pytest.approx(kd / 12, rel=1e-12)
    sum(terms.values()).backward()
    assert torch.all(z.grad[2, 2:] == 0) and torch.all(z.grad[:2, 2:4] != 0)  # the exemplar's current classes: none


def herding_by_hand(points, k):
    """The herding rule in plain Python: at step i the unchosen point p minimising ‖μ − (Σ chosen + p) / i‖."""
    dims = range(len(points[0]))
    mean = [sum(p[d] for p in points) / len(points) for d in dims]
    chosen, total = [], [0.0] * len(mean)
    for i in range(1, k + 1):
        costs = {j: math.dist(mean, [(total[d] + p[d]) / i for d in dims]) for j, p in enumerate(points)
                 if j not in chosen}
        best = min(costs, key=costs.get)
        chosen.append(best)
        total = [total[d] + points[best][d] for d in dims]
    return chosen


def test_herding_picks_what_the_rule_picks():
    torch.manual_seed(1)
    points = torch.randn(12, 3, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    assert herding(points, 5).tolist() == herding_by_hand(points.tolist(), 5)
    assert herding(points, 20).tolist() == herding_by_hand(points.tolist(), 12)  # at most every point, once


def task_data(dataset, task):
    indices = dataset.task_indices(task)
    return dataset.splits.train_images[indices], dataset.splits.train_labels[indices]


def test_the_memory_is_herded_and_class_balanced_the_old_classes_cut_to_their_first_entries():
    model, dataset = build_model("--model", "icarl", "--buffer_size", "12")
    images, labels = task_data(dataset, 0)
    model.end_task(0, images, labels)
    model.eval()
    for c in (0, 1):
        rows = torch.nonzero(labels == c).flatten()
        with torch.no_grad():
            features = model.net.features(model.normalize(images[rows]))
        herded = rows[herding_by_hand(features.tolist(), 6)]
        kept = model.buffer.labels[:model.buffer.size] == c
        assert torch.equal(model.buffer.images[:model.buffer.size][kept], images[herded])
    first = {c: model.buffer.images[:model.buffer.size][model.buffer.labels[:model.buffer.size] == c][:3].clone()
             for c in (0, 1)}
    model.train()
    model.end_task(1, *task_data(dataset, 1))
    stored = model.buffer.labels[:model.buffer.size]
    assert torch.bincount(stored, minlength=4).tolist() == [3, 3, 3, 3]
    for c in (0, 1):
        assert torch.equal(model.buffer.images[:model.buffer.size][stored == c], first[c])


def nearest_mean_by_hand(model, images):
    """Predicted class of each image: the stored class whose mean exemplar feature is nearest."""
    buffer = model.buffer
    with torch.no_grad():
        stored = model.net.features(model.normalize(buffer.images[:buffer.size]))
        features = model.net.features(model.normalize(images))
    labels = buffer.labels[:buffer.size].tolist()
    means = {c: stored[[i for i, y in enumerate(labels) if y == c]].mean(0) for c in set(labels)}
    return [min(means, key=lambda c: (f - means[c]).square().sum().item()) for f in features]


def test_the_nme_prediction_is_the_nearest_mean_of_the_buffer_and_follows_the_network():
    model, dataset = build_model("--model", "icarl", "--buffer_size", "20")
    images, labels = task_data(dataset, 0)
    model.begin_task(0, labels)
    model.train_step(images[:50], labels[:50])
    model.end_task(0, images, labels)
    test = dataset.splits.test_images[:40]
    model.eval()
    with torch.no_grad():
        logits = model(model.normalize(test))
    assert logits.argmax(1).tolist() == nearest_mean_by_hand(model, test)
    assert torch.all(logits[:, 2:] == float("-inf"))  # no exemplar yet
    model.train()
    model.begin_task(1, task_data(dataset, 1)[1])
    model.train_step(*(t[:50] for t in task_data(dataset, 1)))  # the network changes: the means are stale
    model.eval()
    with torch.no_grad():
        again = model(model.normalize(test))
    assert again.argmax(1).tolist() == nearest_mean_by_hand(model, test) and not torch.equal(again, logits)


def test_the_exemplars_join_the_tasks_training_data(tmp_path, monkeypatch):
    seen = []
    real = ICarl.observe

    def record(self, images, labels):
        seen.append((self.task, labels.clone()))
        return real(self, images, labels)
    monkeypatch.setattr(ICarl, "observe", record)
    record_line = run_main(tmp_path, "--model", "icarl", *FEW_STEPS)
    assert all_finite(record_line["class_il"])
    model, dataset = build_model("--model", "icarl", "--buffer_size", "20")
    for task in (0, 1):
        trained = torch.cat([labels for t, labels in seen if t == task])
        expected = torch.bincount(task_data(dataset, task)[1], minlength=10)
        if task:
            expected[:2] += 10  # the memory after task 0: 10 exemplars of each of its classes
        assert torch.bincount(trained, minlength=10).tolist() == expected.tolist()


def cosine_by_hand(features, weights):
    return [[sum(a * b for a, b in zip(f, w)) / (math.hypot(*f) * math.hypot(*w)) for w in weights] for f in features]


def test_lucirs_head_is_the_learned_scale_times_the_cosine_over_every_block():
    model, _ = build_model("--model", "lucir", "--buffer_size", "20")
    head = model.head
    with torch.no_grad():
        head.sigma.fill_(3.5)
    features = torch.randn(4, head.in_features)
    weights = torch.cat(list(head.blocks))
    expected = torch.tensor(cosine_by_hand(features.tolist(), weights.tolist())) * 3.5
    assert torch.allclose(head(features), expected, atol=1e-5)
    assert [block.requires_grad for block in head.blocks] == [True, False, False, False, False]


def test_less_forget_and_margin_ranking_are_the_direct_formulas():
    features, old = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    cos = [sum(a * b for a, b in zip(f, g)) / (math.hypot(*f) * math.hypot(*g)) for f, g in zip(features.tolist(),
                                                                                               old.tolist())]
    assert less_forget(features, old).item() == pytest.approx(sum(1 - c for c in cos) / 5, rel=1e-9)
    cosine, labels = torch.rand(4, 8, dtype=torch.float64) * 2 - 1, torch.tensor([0, 5, 3, 1])
    n_old, k, margin = 4, 2, 0.5
    hinges = [max(0.0, margin - row[y] + hard) for row, y in zip(cosine.tolist(), labels.tolist()) if y < n_old
              for hard in sorted(row[n_old:], reverse=True)[:k]]
    assert margin_ranking(cosine, labels, n_old, k, margin).item() == pytest.approx(sum(hinges) / len(hinges),
                                                                                     rel=1e-12)
    assert margin_ranking(cosine, torch.tensor([4, 5, 6, 7]), n_old, k, margin).item() == 0  # no old row


def test_a_lucir_step_adds_the_three_terms_as_the_formulas_give_them():
    model, dataset = build_model("--model", "lucir", "--buffer_size", "20", "--lamda_base", "4", "--lamda_mr", "2")
    model.augment = model.normalize  # no random view: the test forwards the same inputs
    with torch.no_grad():
        model.old_net.net.features[1].weight.mul_(0.7)  # an old network that differs
    model.task = 2
    images = torch.cat([task_data(dataset, t)[0][:4] for t in (0, 2)])
    labels = torch.cat([task_data(dataset, t)[1][:4] for t in (0, 2)])
    taken = {}
    model.step = lambda terms, logits, labels: taken.update(terms)
    model.observe(images, labels)
    with torch.no_grad():
        inputs = model.normalize(images)
        features, old = model.net.features(inputs), model.old_net.features(inputs)
        cosine = torch.tensor(cosine_by_hand(features.tolist(), torch.cat(list(model.head.blocks)).tolist()))
    scaled = model.head.sigma.item() * cosine
    ce = -sum(row[y] - math.log(sum(math.exp(v) for v in row)) for row, y in zip(scaled.tolist(), labels.tolist()))
    forget = sum(1 - c for c in F.cosine_similarity(features, old).tolist()) / len(labels)
    hinges = [max(0.0, 0.5 - row[y] + hard) for row, y in zip(cosine.tolist(), labels.tolist()) if y < 4
              for hard in sorted(row[4:], reverse=True)[:2]]
    assert taken["ce"].item() == pytest.approx(ce / len(labels), rel=1e-5)
    assert taken["less_forget"].item() == pytest.approx(4 * math.sqrt(2) * forget, rel=1e-4)
    assert taken["margin"].item() == pytest.approx(2 * sum(hinges) / len(hinges), rel=1e-4)


def test_imprinting_sets_the_new_block_from_the_classes_mean_unit_features():
    model, dataset = build_model("--model", "lucir", "--buffer_size", "20")
    model.augment = model.normalize
    images, labels = task_data(dataset, 1)
    old_norm = torch.cat(list(model.head.blocks[:1])).norm(dim=1).mean()
    model.prepare_task(1, images, labels)
    with torch.no_grad():
        unit = F.normalize(model.net.features(model.normalize(images)), dim=1)
    for row, c in enumerate((2, 3)):
        mean = unit[labels == c].mean(0)
        assert torch.allclose(model.head.blocks[1][row], mean / mean.norm() * old_norm, atol=1e-6)
    assert [block.requires_grad for block in model.head.blocks] == [False, True, False, False, False]


def test_the_finetuning_moves_the_head_alone():
    model, dataset = build_model("--model", "lucir", "--buffer_size", "20", "--fitting_epochs", "2")
    before = {name: p.detach().clone() for name, p in model.net.named_parameters()}
    model.end_task(0, *task_data(dataset, 0))
    changed = {name for name, p in model.net.named_parameters() if not torch.equal(before[name], p)}
    assert changed == {"net.classifier.blocks.0", "net.classifier.sigma"}


@pytest.mark.parametrize("model,mask", [("icarl", "none"), ("icarl", "ninf"), ("icarl", "balanced"),
                                        ("icarl", "lode"), ("lucir", "none"), ("lucir", "general"),
                                        ("lucir", "las")])
def test_a_few_steps_under_a_mask(tmp_path, model, mask):
    record = run_main(tmp_path, "--model", model, "--mask", mask, *FEW_STEPS)
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])
    assert record["task_il"]["final_avg"] > 55  # chance: 50


@pytest.mark.parametrize("model_cls", [ICarl, Lucir])
def test_a_run_resumed_mid_task_gives_the_same_matrix(tmp_path, monkeypatch, model_cls):
    flags = ["--model", model_cls.__name__.lower(), "--mask", "general", "--n_epochs", "2", "--batch_size", "100",
             "--buffer_size", "20", "--threads", "1", "--quiet"]
    whole = run_main(tmp_path / "whole", *flags)
    resumed = flags + ["--results_path", str(tmp_path / "resumed"), "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert interrupt_then_resume(monkeypatch, model_cls, 16, resumed) == 0  # task 3, its second epoch
    assert read_records(tmp_path / "resumed")[-1]["class_il"]["matrix"] == whole["class_il"]["matrix"]


@pytest.mark.parametrize("argv,words", [
    (["--model", "icarl", "--buffer_size", "20", "--calibration", "nme"], ("--calibration", "model icarl")),
    (["--model", "icarl", "--buffer_size", "20", "--buffer_policy", "balanced"], ("--buffer_policy", "own policy")),
])
def test_what_icarl_cannot_take_is_refused_with_one_line(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert all(word in err for word in words), err


def test_lucir_refuses_another_head_with_one_line(tmp_path, capsys):
    assert main.main(["--model", "lucir", "--buffer_size", "20", "--head", "rpc", "--results_path",
                      str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "argument --head: rpc is not allowed with model lucir" in err and err.count("\n") == 1
