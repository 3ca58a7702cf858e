"""Where a run ran: the code's git revision, library versions, CPU and its native bf16, GPU and CUDA,
torch threads."""
import os
import platform
import subprocess
import sys
from importlib import metadata

SOURCE_FOLDERS = ("models", "datasets", "backbone", "utils")


def git_revision():
    """The commit of this checkout, +dirty when tracked files changed or files that are not ignored
    were added under the source folders (a dropped-in model); None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

    def git(*arguments):
        return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
        added = git("status", "--porcelain", "--untracked-files=all", "--", *SOURCE_FOLDERS)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if changed.stdout.strip() or added.stdout.strip() else "")


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(device):
    """The fields every results line records about where it ran."""
    import torch

    from utils.speed.device import cpu_has_native_bf16

    on_cuda = str(device).startswith("cuda")
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": package_version("torchvision"), "kornia": package_version("kornia"),
            "numpy": package_version("numpy"), "platform": sys.platform, "cpu": cpu_name(),
            "cpu_native_bf16": cpu_has_native_bf16(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if on_cuda else None,
            "cuda": torch.version.cuda if on_cuda else None}
