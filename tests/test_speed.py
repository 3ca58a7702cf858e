"""--amp, --channels_last, --compile give finite results; masks stay exact under autocast; the benchmark runs."""
import subprocess
import sys

import pytest
import torch

from backbone.precision import PrecisionWrapper
from backbone.resnet18 import ResNet18
from tests.conftest import ROOT
from tests.helpers import all_finite, mask_at_a_step, run_main
from utils.core.masks import MASKS
from utils.core.masks.functional import SCOPES, Position, masked_cross_entropy
from utils.speed.device import cpu_has_native_bf16

needs_bf16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16: --amp is refused here")


@pytest.mark.parametrize("flags", [pytest.param(["--amp"], marks=needs_bf16),
                                   pytest.param(["--amp", "bf16", "--channels_last"], marks=needs_bf16),
                                   ["--channels_last"]])
@pytest.mark.parametrize("model", ["derpp", "xder"])
def test_speed_flags_train_to_finite_results(tmp_path, model, flags):
    record = run_main(tmp_path, "--model", model, "--buffer_size", "20", "--n_epochs", "1", *flags)
    assert all_finite(record["class_il"]) and all_finite(record["task_il"])


def test_compile_trains_on_cpu(tmp_path):
    record = run_main(tmp_path, "--model", "er", "--buffer_size", "20", "--n_epochs", "1", "--compile")
    assert all_finite(record["class_il"])


def test_wrapper_returns_fp32_logits_in_channels_last():
    net = PrecisionWrapper(ResNet18(10, nf=4), "cpu", amp="bf16", channels_last=True)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.float32 and out.shape == (2, 10)
    assert net.net.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert set(net.state_dict()) == {f"net.{key}" for key in net.net.state_dict()}


@pytest.mark.parametrize("name", MASKS.names())
def test_masks_on_bf16_logits_under_autocast_are_the_fp32_computation(name):
    """A network under bf16 autocast hands the loss bf16 logits: the mask and the cross-entropy must
    run in fp32 on those values (the same loss and gradient as on their fp32 copy, outside autocast)."""
    torch.manual_seed(0)
    logits = torch.randn(6, 10).to(torch.bfloat16)
    labels = torch.tensor([0, 1, 2, 3, 8, 9])
    keep = SCOPES["task"](labels, Position(task=4, classes_per_task=2, n_classes=10, seen=None))
    value = -1.5 if MASKS.get(name).USES_VALUE else None

    def loss_and_grad(z, autocast):
        z = z.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = masked_cross_entropy(z, labels, keep, mask_at_a_step(name, value, labels, 10))
        loss.backward()
        return loss, z.grad

    loss, grad = loss_and_grad(logits, True)
    reference_loss, reference_grad = loss_and_grad(logits.float(), False)
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    assert torch.equal(loss, reference_loss) and torch.equal(grad, reference_grad.to(torch.bfloat16))


def test_fp16_needs_cuda(tmp_path, capsys):
    import main
    with pytest.raises(SystemExit):
        main.main(["--model", "sgd", "--amp", "fp16", "--device", "cpu"])
    assert "--amp" in capsys.readouterr().err


def test_benchmark_prints_its_table():
    result = subprocess.run([sys.executable, "-m", "utils.bench", "--models", "er", "derpp", "--widths", "16", "4",
                             "--precisions", "fp32", "cl", "bf16", "--steps", "1", "--warmup", "1",
                             "--buffer_size", "20"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for word in ("device:", "suite img/s", "bare img/s", "suite/bare", "peak MB", "derpp", "3080 + 40",
                 "| cl ", "skipped er width 4 cl: channels_last below width 16", "fastest for derpp at width 16: "):
        assert word in result.stdout
    assert ("| bf16 " in result.stdout) == ("(native bf16)" in result.stdout)


def test_small_benchmark_prints_its_table():
    result = subprocess.run([sys.executable, "-m", "utils.bench", "--small", "--models", "der", "xder", "--datasets",
                             "seq-digits", "--steps", "2", "--warmup", "1", "--buffer_size", "20"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for word in ("device:", "1 thread", "seq-digits", "| der ", "| xder ", "bare/suite", "diagnostics", "guard",
                 "online", "counts"):
        assert word in result.stdout
    wrong = subprocess.run([sys.executable, "-m", "utils.bench", "--models", "sgd"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "'sgd' is not allowed without --small" in wrong.stderr


@pytest.mark.parametrize("name", ["sgd", "joint", "er", "der", "derpp", "derppmr", "er_ace", "ermr", "orthermr",
                                  "orthderppmr", "ssil"])
def test_the_small_bench_bare_step_is_the_models_own_computation(name):
    """Written again in utils/speed/bare_steps.py, each model's bare step moves the network and the memory exactly as
    the model's train_step does, from the same state and random draws, over two steps."""
    from utils.speed.bare_steps import BareStep
    from utils.speed.small_bench import at_the_second_task, batches
    torch.manual_seed(0)
    model, dataset, second = at_the_second_task(name, "seq-digits", 50)
    bare, stream = BareStep(model, dataset), batches(dataset, second, model.args.batch_size)
    for _ in range(2):
        images, labels = next(stream)
        state = torch.get_rng_state()
        model.train_step(images, labels)
        torch.set_rng_state(state)
        bare.step(images, labels)
    for ours, theirs in zip(model.net.net.parameters(), bare.net.parameters()):
        assert torch.equal(ours, theirs)
    if bare.memory is not None:
        for field, stored in bare.memory.fields.items():
            assert torch.equal(model.buffer.storage[field][:model.buffer.capacity], stored[:model.buffer.capacity])


def steps_of(model, dataset, count=2):
    indices = dataset.task_indices(0)
    model.begin_task(0, dataset.splits.train_labels[indices])
    for step in range(count):
        batch = indices[10 * step:10 * step + 10]
        model.train_step(dataset.splits.train_images[batch], dataset.splits.train_labels[batch])


@needs_bf16
def test_amp_runs_the_network_in_bf16_and_hands_the_loss_fp32():
    from tests.helpers import build_model

    model, dataset = build_model("--model", "derpp", "--buffer_size", "20", "--amp", "bf16")
    outputs = []
    model.net.net.features[1].register_forward_hook(lambda module, inputs, output: outputs.append(output.dtype))
    logits = []
    model.net.register_forward_hook(lambda module, inputs, output: logits.append(output.dtype))
    steps_of(model, dataset)
    assert outputs and set(outputs) == {torch.bfloat16} and set(logits) == {torch.float32}


def test_compile_runs_the_compiled_backbone():
    import torch._dynamo

    from tests.helpers import build_model

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model, dataset = build_model("--model", "er", "--buffer_size", "20", "--compile")
    steps_of(model, dataset)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
