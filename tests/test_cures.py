"""The other cures of recency bias against direct formulas: LODE's two terms and their gradient, LAS's window
counts after a known sequence of batches, SS-IL's two softmaxes (buffer scope past), weight aligning's norms,
post-hoc logit adjustment (predictions change, training does not); every replay model with each correction
runs; the refusals."""
import math

import pytest
import torch

import main
from models import MODELS
from tests.helpers import build_model, model_flags, run_main
from utils.core.calibrations import CALIBRATIONS
from utils.core.label_counts import LabelCounts
from utils.core.masks.base import build_mask
from utils.core.masks.functional import BUFFER_SCOPES, Position, masked_cross_entropy

# 3 tasks × 2 classes; the current task is task 1 (classes 2, 3); new = classes 2..5
LOGITS = torch.tensor([[1.0, -0.5, 2.0, 0.3, 0.7, -1.2], [0.2, 1.4, -0.3, 1.1, -0.8, 0.5]], dtype=torch.float64)
LABELS = torch.tensor([2, 3])
REPLAY = [n for n in MODELS.names() if MODELS.get(n).NEEDS_BUFFER]


def test_lode_is_the_new_class_ce_plus_rho_over_t_times_the_old_vs_new_ce():
    mask = build_mask("lode", rho=0.3)
    z = LOGITS.clone().requires_grad_(True)
    keep = torch.tensor([[False, False, True, True, True, True]] * 2)
    at_task = Position(task=1, classes_per_task=2, n_classes=6, seen=None)
    loss = masked_cross_entropy(z, LABELS, keep, mask) + mask.extra_loss(z, LABELS, at_task)
    loss.backward()
    expected, grads = 0.0, torch.zeros_like(LOGITS)
    for i, (row, y) in enumerate(zip(LOGITS.tolist(), LABELS.tolist())):
        old, new = row[:2], row[2:]
        lse_old, lse_new = math.log(sum(map(math.exp, old))), math.log(sum(map(math.exp, new)))
        intra = -(row[y] - lse_new)
        inter = -(lse_new - math.log(math.exp(lse_old) + math.exp(lse_new)))
        expected += (intra + 0.3 / 1 * inter) / 2
        p_old = math.exp(lse_old) / (math.exp(lse_old) + math.exp(lse_new))  # the inter softmax's old side
        for j in range(6):
            within = math.exp(row[j] - (lse_old if j < 2 else lse_new))
            g_inter = 0.3 * (p_old * within if j < 2 else -p_old * within)
            g_intra = 0.0 if j < 2 else within - (j == y)
            grads[i, j] = (g_intra + g_inter) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(z.grad, grads, atol=1e-12)
    assert mask.extra_loss(z, LABELS, at_task._replace(task=0)) is None  # the first task: the plain CE


def test_lode_with_rho_zero_is_negative_infinity_masking_of_the_old_classes(tmp_path):
    flags = ("--model", "der", "--buffer_size", "20", "--n_epochs", "1")
    lode = run_main(tmp_path / "lode", *flags, "--mask", "lode", "--rho", "0")
    ninf = run_main(tmp_path / "ninf", *flags, "--mask", "ninf", "--mask_scope", "new")
    assert lode["args"]["mask_scope"] == "new" and lode["class_il"]["matrix"] == ninf["class_il"]["matrix"]


def test_las_counts_the_labels_of_the_last_window_steps():
    label_counts = LabelCounts(torch.zeros(4))
    mask = build_mask("las", tau=0.5, window=2, counts=label_counts)
    label_counts.begin_task(torch.zeros(4))
    steps = [torch.tensor([0, 0, 1]), torch.tensor([1, 2]), torch.tensor([2, 2, 2])]
    for labels in steps:
        label_counts.begin_step()
        label_counts.add(labels[:1])
        label_counts.add(labels[1:])  # stream and replay rows of one step, told apart
    counts = torch.tensor([0.0, 1.0, 4.0, 0.0])  # steps 2 and 3 only
    z = torch.zeros(2, 4)
    expected = z + 0.5 * counts.log()
    assert torch.equal(mask(z, torch.ones(2, 4, dtype=torch.bool)), expected)
    assert mask(z, None)[0, 0] == float("-inf")  # absent from the window: masked in effect
    assert label_counts.total.tolist() == [2.0, 2.0, 4.0, 0.0]  # every step, in all


def test_ss_il_replay_rows_take_a_softmax_over_the_old_classes():
    labels = torch.tensor([0, 3])  # a row of task 0, and one of task 1 (the current task is 2: old = 0..3)
    keep = BUFFER_SCOPES["past"](labels, Position(task=2, classes_per_task=2, n_classes=6, seen=None))
    assert keep.tolist() == [[True] * 4 + [False] * 2] * 2
    loss = masked_cross_entropy(LOGITS, labels, keep, build_mask("ninf"))
    expected = -(LOGITS[:, :4].log_softmax(1)[torch.arange(2), labels]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_weight_aligning_gives_the_new_rows_the_old_rows_mean_norm():
    model, _ = build_model("--model", "der", "--buffer_size", "20", "--calibration", "wa")
    weight = model.net.net.classifier.weight
    with torch.no_grad():
        weight[4:6] *= 5  # task 2's rows grew
    before = weight.detach().clone()
    model.calibrate(2)
    norms = weight.detach().norm(dim=1)
    assert norms[4:6].mean().item() == pytest.approx(norms[:4].mean().item(), rel=1e-6)
    assert torch.equal(weight[:4], before[:4]) and torch.equal(weight[6:], before[6:])
    ratio = (weight[4:6] / before[4:6]).flatten()
    assert torch.allclose(ratio, ratio[:1].expand_as(ratio))  # one scale for the whole new task
    aligned = weight.detach().clone()
    model.calibrate(0)  # nothing to align after the first task
    assert torch.equal(weight.detach(), aligned)


def test_post_hoc_adjustment_changes_predictions_and_not_training(tmp_path):
    flags = ("--model", "der", "--buffer_size", "20", "--n_epochs", "1")
    plain = run_main(tmp_path / "plain", *flags)
    adjusted = run_main(tmp_path / "adjusted", *flags, "--calibration", "posthoc_la")
    assert adjusted["class_il"]["matrix"] != plain["class_il"]["matrix"]
    assert adjusted["diagnostics"] == plain["diagnostics"]  # every training step's losses and gradients
    model, _ = build_model(*flags, "--calibration", "posthoc_la", "--la_tau", "2")
    model.counts.total[:] = torch.tensor([4.0, 4, 2, 0, 0, 0, 0, 0, 0, 0])
    z = torch.randn(3, 10)
    model.eval()
    adjusted = model.calibration.adjust(z, model)
    prior = torch.tensor([0.4, 0.4, 0.2])
    assert torch.allclose(adjusted[:, :3], z[:, :3] - 2 * prior.log())
    assert torch.all(adjusted[:, 3:] == float("-inf"))


@pytest.mark.parametrize("calibration", [c for c in CALIBRATIONS.names() if c != "none"])
@pytest.mark.parametrize("model", [n for n in REPLAY if not MODELS.get(n).OWN_CLASSIFIER])  # iCaRL's: refused
def test_every_replay_model_runs_with_each_correction(tmp_path, model, calibration):
    heads = CALIBRATIONS.get(calibration).HEADS
    if heads and MODELS.get(model).DEFAULT_HEAD not in heads:
        pytest.skip(f"{calibration} is refused with {model}'s default head (tested below)")
    record = run_main(tmp_path, "--model", model, *model_flags(model), "--n_epochs", "1", "--calibration",
                      calibration)
    assert record["args"]["calibration"] == calibration and math.isfinite(record["class_il"]["final_avg"])


@pytest.mark.parametrize("argv,words", [
    (["--model", "sgd", "--calibration", "wa"], ("--calibration", "model sgd", "replay models")),
    (["--model", "er_ace", "--buffer_size", "20", "--calibration", "wa"], ("--head cosine", "linear")),
    (["--model", "der", "--buffer_size", "20", "--head", "rpc", "--calibration", "wa"], ("--head rpc",)),
    (["--model", "er_ace", "--buffer_size", "20", "--calibration", "bic"], ("--head cosine", "linear")),
    (["--model", "der", "--buffer_size", "20", "--buffer_scope", "past"], ("--buffer_scope", "--mask_buffer")),
    (["--model", "der", "--buffer_size", "20", "--mask_buffer"], ("--mask_buffer", "model der", "no cross-entropy")),
    (["--model", "der", "--buffer_size", "20", "--rho", "0.1"], ("--rho", "mask lode")),
    (["--model", "der", "--buffer_size", "20", "--calibration", "bic", "--bic_split", "1"],
     ("--bic_split", "between 0 and 1")),
])
def test_cures_that_make_no_sense_are_refused_with_one_line(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv + ["--results_path", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    for word in words:
        assert word in err, err


def test_lode_las_gradients_flow_through_a_model_step():
    for mask in ("lode", "las"):
        model, dataset = build_model("--model", "er", "--buffer_size", "20", "--mask", mask)
        indices = dataset.task_indices(1)[:10]
        model.begin_task(1, dataset.splits.train_labels[indices])
        model.buffer.add(dataset.splits.train_images[:10], dataset.splits.train_labels[:10])
        before = [p.detach().clone() for p in model.parameters()]
        loss = model.train_step(dataset.splits.train_images[indices], dataset.splits.train_labels[indices])
        assert math.isfinite(loss.item())
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_bic_holds_out_a_class_balanced_split_and_fits_only_alpha_and_beta():
    model, dataset = build_model("--model", "der", "--buffer_size", "20", "--calibration", "bic", "--bic_epochs", "50")
    bic = model.calibration
    indices = dataset.task_indices(1)
    kept = bic.training_indices(indices, dataset, 1, seed=0)
    held_images, held_labels = bic.held_out
    assert len(kept) + len(held_labels) == len(indices)
    held = set(indices.tolist()) - set(kept.tolist())
    assert len(held) == len(held_labels)  # disjoint from what is trained on
    assert torch.equal(dataset.splits.train_images[sorted(held)].sum(), held_images.sum())  # the held-out images
    counts = torch.bincount(held_labels, minlength=4)[2:4]
    per_class = torch.bincount(dataset.splits.train_labels[indices], minlength=4)[2:4]
    assert torch.equal(counts, (0.1 * per_class).round().long())  # a tenth of each new class
    assert torch.equal(bic.training_indices(indices, dataset, 1, seed=0), kept)  # the same split on a resume
    model.buffer.add(dataset.splits.train_images[dataset.task_indices(0)[:20]],
                     dataset.splits.train_labels[dataset.task_indices(0)[:20]], torch.zeros(20, 10))
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    model.calibrate(1)
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())  # the network is frozen
    in_buffer = torch.bincount(model.buffer.labels[:model.buffer.size], minlength=2)[:2]
    old = int(in_buffer.clamp(max=len(held_labels) // 2).sum())  # as many per old class as per new one, if there
    assert bic.sizes == [len(held_labels) + old] and bic.factors[0] == 1
    z = torch.randn(3, 10)
    adjusted = bic.adjust(z, model)
    beta, alpha = bic.factors[1]
    assert torch.allclose(adjusted[:, 2:4], alpha * z[:, 2:4] + beta) and torch.equal(adjusted[:, :2], z[:, :2])
    assert torch.equal(adjusted[:, 4:], z[:, 4:])


@pytest.mark.parametrize("mask", ["las", "balanced"])
def test_label_count_masks_on_x_ders_past_head_buffer_loss(tmp_path, mask):
    record = run_main(tmp_path, "--model", "xder", "--mask", mask, "--mask_buffer", "--buffer_size", "20",
                      "--n_epochs", "1")
    assert math.isfinite(record["class_il"]["final_avg"])


def test_lodes_extra_term_and_the_buffer_loss_keep_fp64_logits_fp64():
    """The model's stream loss with LODE and its buffer loss on fp64 logits equal the fp64 computation exactly
    (an fp32 cast on the way would leave them about 1e-8 apart)."""
    from types import MethodType, SimpleNamespace

    from models.base import ContinualModel
    from tests.helpers import counts_at_a_step
    from utils.core.diagnostics import Diagnostics
    from utils.core.masks.functional import SCOPES, label_kept

    counts = counts_at_a_step(LABELS, 6)
    model = SimpleNamespace(args=SimpleNamespace(mask_scope="new", mask_buffer=False), classes_per_task=2, n_classes=6,
                            task=1, task_free=False, counts=counts, mask=build_mask("lode", rho=0.3, counts=counts),
                            diagnostics=Diagnostics(6, 2, "cpu"))
    model.position = MethodType(ContinualModel.position, model)
    z = LOGITS.clone() * 1.000000123
    loss = ContinualModel.stream_loss(model, z, LABELS)
    keep = label_kept(SCOPES["new"](LABELS, model.position()), LABELS)
    direct = masked_cross_entropy(z, LABELS, keep, model.mask) + model.mask.extra_loss(z, LABELS, model.position())
    assert loss.dtype == torch.float64 and loss.item() == direct.item()
    buffer = ContinualModel.buffer_loss(model, z, LABELS)
    assert buffer.dtype == torch.float64 and buffer.item() == torch.nn.functional.cross_entropy(z, LABELS).item()


def test_las_is_the_authors_form_and_las_stream_the_stream_rows_alone(tmp_path, capsys):
    """`las` adjusts ER's replay rows too (the authors' ER-LAS), `las_stream` the stream rows alone; on DER, which
    has no cross-entropy on buffer rows, the two are one computation; each form refuses the other's --mask_buffer."""
    flags = ["--buffer_size", "20", "--n_epochs", "1"]
    authors = run_main(tmp_path / "a", "--model", "er", "--mask", "las", *flags)
    stream = run_main(tmp_path / "s", "--model", "er", "--mask", "las_stream", *flags)
    asked = run_main(tmp_path / "b", "--model", "er", "--mask", "las_stream", "--tau", "0", *flags)
    assert authors["args"]["mask_buffer"] is True and stream["args"]["mask_buffer"] is False
    assert authors["class_il"]["matrix"] != stream["class_il"]["matrix"]
    plain = run_main(tmp_path / "p", "--model", "er", *flags)
    assert asked["class_il"]["matrix"] == plain["class_il"]["matrix"]  # τ = 0: no adjustment anywhere
    der = [run_main(tmp_path / name, "--model", "der", "--mask", name, *flags) for name in ("las", "las_stream")]
    assert der[0]["args"]["mask_buffer"] is False and der[0]["class_il"]["matrix"] == der[1]["class_il"]["matrix"]
    for refused, hint in ((["--mask", "las_stream", "--mask_buffer"], "--mask las adjusts the replay rows too"),
                          (["--mask", "las", "--no-mask_buffer"], "--mask las_stream is the form")):
        with pytest.raises(SystemExit) as exit_info:
            main.main(["--model", "er", "--buffer_size", "20", *refused])
        assert exit_info.value.code == 2 and hint in capsys.readouterr().err
