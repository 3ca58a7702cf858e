"""The training device: --device auto resolved, torch's CPU threads, waiting for queued work, timing two step
functions side by side, and what a device can run (the rules the command line, --levers auto and the benches
share)."""
import statistics
import time

import torch

CHANNELS_LAST_MIN_WIDTH = 16


def resolve_device(name):
    """auto -> cuda when a GPU is present, else cpu; any other name as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def set_threads(threads):
    """torch's CPU threads (None: torch's own choice)."""
    if threads:
        torch.set_num_threads(threads)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_pair(first, second, warmup, steps, device="cpu"):
    """Median seconds per step of two step functions, run alternately so that drifts in the
    machine's load hit both alike."""
    for _ in range(warmup):
        first()
        second()
    times = ([], [])
    for _ in range(steps):
        for step, record in zip((first, second), times):
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            record.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def cpu_has_native_bf16():
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX), asked of torch;
    without them bf16 autocast on the CPU runs about 10× slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def amp_refusal(amp, on_cpu):
    """Why --amp `amp` cannot run on this device (the CPU when on_cpu), or None."""
    if on_cpu and amp == "fp16":
        return "'fp16' is not allowed on the CPU: use --amp bf16 (or --device cuda)"
    if on_cpu and amp == "bf16" and not cpu_has_native_bf16():
        return ("'bf16' is not allowed on this CPU: it has no native bf16 (AVX-512 BF16 or AMX), where bf16 "
                "autocast runs about 10x slower than fp32; drop --amp, or use a GPU")
    return None


def channels_last_crashes(width, on_cpu):
    """Whether torch's channels_last convolution backward would crash for a backbone of `width` (--nf; None for
    the MLPs): on the CPU below CHANNELS_LAST_MIN_WIDTH channels."""
    return on_cpu and width is not None and width < CHANNELS_LAST_MIN_WIDTH
