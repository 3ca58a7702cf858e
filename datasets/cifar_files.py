"""The official CIFAR python release: download, checksum check and safe parsing (CIFAR-10 and -100)."""
import os
import pickle

import numpy as np
import torch
from torchvision.datasets.utils import check_integrity

from datasets import downloads
from datasets.base import DataError, warn_data
from utils.plumbing.files import load_pickle


def ensure_release(root, release):
    """Make sure `root` holds `release` (a torchvision CIFAR class); warn if checksums differ."""
    folder = os.path.join(root, release.base_folder)
    if not os.path.isdir(folder):
        downloads.download_or_fail(release.url, root, release.filename, release.tgz_md5, folder)
    files = release.train_list + release.test_list
    missing = [name for name, _ in files if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} of the official layout")
    differing = [name for name, md5 in files if not check_integrity(os.path.join(folder, name), md5)]
    if differing:
        warn_data(f"{folder}: {len(differing)} of {len(files)} files differ from the official checksums "
                  f"(a subset such as cifar10-mini?); loading them anyway")
    return folder


PICKLE_MARK = b"\x80"  # the PROTO opcode that opens every pickle of protocol 2 or later (CIFAR's)


def read_batch(path, label_key):
    """One batch file; a file that is not a pickle, or a pickle without CIFAR's fields, is "not a CIFAR
    batch file"; a pickle cut short is "truncated"."""
    with open(path, "rb") as f:
        if f.read(1) != PICKLE_MARK:
            raise DataError(f"{path}: not a CIFAR batch file (it does not start like a pickle)")
    try:
        entry = load_pickle(path)
    except EOFError:
        raise DataError(f"{path}: truncated CIFAR batch file (the pickle ends early); download it again") from None
    except (pickle.UnpicklingError, ValueError, TypeError) as error:
        kind = "truncated" if "truncated" in str(error) else "damaged"
        raise DataError(f"{path}: {kind} CIFAR batch file ({type(error).__name__}: {error})") from None
    try:
        return (np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32),
                np.asarray(entry[label_key], dtype=np.int64))
    except (KeyError, ValueError, TypeError) as error:
        raise DataError(f"{path}: not a CIFAR batch file (no usable {error} field)") from None


def read_batches(folder, names, label_key):
    """uint8 images [N, 3, 32, 32] and int64 labels from pickled CIFAR batch files."""
    images, labels = [], []
    for name in names:
        path = os.path.join(folder, name)
        batch_images, batch_labels = read_batch(path, label_key)
        images.append(batch_images)
        labels.append(batch_labels)
        if len(images[-1]) != len(labels[-1]):
            raise DataError(f"{path}: {len(images[-1])} images but {len(labels[-1])} labels")
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def load_release(root, release, label_key):
    """Splits (train images, train labels, test images, test labels) of a CIFAR release."""
    folder = ensure_release(root, release)
    train = read_batches(folder, [name for name, _ in release.train_list], label_key)
    test = read_batches(folder, [name for name, _ in release.test_list], label_key)
    return (*train, *test)
