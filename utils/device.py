"""The training device: --device auto resolved, torch's CPU threads, and waiting for queued work."""
import torch


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
