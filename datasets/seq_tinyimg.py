import os
import warnings

import kornia.augmentation as K
import numpy as np
import torch
from torch import nn
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from backbone.resnet18 import ResNet18, add_width_arg
from datasets import register_dataset
from datasets.augmentations import PaddedRandomCrop
from datasets.base import ContinualDataset, DataError, Splits, warn_data
from datasets.downloads import download_or_fail
from utils.plumbing.files import write_atomically

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER = "tiny-imagenet-200"


DECODE_CHUNK = 2048


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError as error:
        raise DataError(f"{path}: missing or unreadable ({error}); is this the official layout?") from None


def parse_folder(folder):
    """File lists and labels of the official layout: wnids.txt, train/<wnid>/images/*.JPEG,
    val/images/*.JPEG labelled by val/val_annotations.txt. Label = index of the wnid in sorted order."""
    wnids = sorted(read_lines(os.path.join(folder, "wnids.txt")))
    label_of = {wnid: i for i, wnid in enumerate(wnids)}
    train_files, train_labels = [], []
    for wnid in wnids:
        image_dir = os.path.join(folder, "train", wnid, "images")
        if not os.path.isdir(image_dir):
            raise DataError(f"{image_dir}: missing; is this the official layout?")
        names = sorted(n for n in os.listdir(image_dir) if n.lower().endswith((".jpeg", ".jpg")))
        train_files += [os.path.join(image_dir, n) for n in names]
        train_labels += [label_of[wnid]] * len(names)
    val_files, val_labels = [], []
    for line in read_lines(os.path.join(folder, "val", "val_annotations.txt")):
        name, wnid = line.split("\t")[:2]
        if wnid not in label_of:
            raise DataError(f"{folder}/val/val_annotations.txt: unknown class {wnid!r} for {name}")
        val_files.append(os.path.join(folder, "val", "images", name))
        val_labels.append(label_of[wnid])
    return (train_files, train_labels), (val_files, val_labels)


def decode_chunk(files):
    """torchvision's batched JPEG decoder (grayscale images become RGB); a failure names its file.

    torchvision 0.29 deprecates its decoders for TorchCodec; they are kept here because they are
    3× faster than PIL on this data (19 s instead of 60 s for TinyImageNet's 110k images)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities of TorchVision.*")
        data = [read_file(path) for path in files]
        try:
            return torch.stack(decode_jpeg(data, mode=ImageReadMode.RGB))
        except RuntimeError:
            for path, raw in zip(files, data):
                try:
                    image = decode_jpeg(raw, mode=ImageReadMode.RGB)
                except RuntimeError as error:
                    raise DataError(f"{path}: not a readable JPEG ({error})") from None
                if image.shape != (3, 64, 64):
                    raise DataError(f"{path}: {tuple(image.shape[1:])} pixels, expected 64×64")
            raise


def decode_all(files):
    """uint8 [N, 3, 64, 64] from JPEG files."""
    return torch.cat([decode_chunk(files[i:i + DECODE_CHUNK]) for i in range(0, len(files), DECODE_CHUNK)]).numpy()


def cached_splits(folder):
    """Decode once, then read the .npy cache written next to the folder's files; in a read-only
    folder, decode at every load and say which cache file could not be written."""
    names = ("train_images", "train_labels", "test_images", "test_labels")
    paths = [os.path.join(folder, f"cache_{name}.npy") for name in names]
    if not all(os.path.isfile(p) for p in paths):
        (train_files, train_labels), (val_files, val_labels) = parse_folder(folder)
        arrays = (decode_all(train_files), np.asarray(train_labels, dtype=np.int64),
                  decode_all(val_files), np.asarray(val_labels, dtype=np.int64))
        for path, array in zip(paths, arrays):
            try:
                write_atomically(path, lambda f, array=array: np.save(f, array))
            except OSError as error:
                warn_data(f"cannot write the cache file {path} ({error.strerror or error}); "
                          f"the JPEG files will be decoded again at every load")
                return Splits(*(torch.from_numpy(a) for a in arrays))
    try:
        return Splits(*(torch.from_numpy(np.load(p)) for p in paths))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}: unreadable cache ({error}); delete its cache_*.npy files") from None


@register_dataset("seq-tinyimg")
class SequentialTinyImageNet(ContinualDataset):
    """TinyImageNet-200 (64×64), 10 tasks × 20 classes, ResNet18; the DER paper's protocol
    (Buzzega et al. 2020): 100 epochs, batch 32, lr 0.03. The official validation split is the test set."""
    N_TASKS = 10
    CONVOLUTIONAL = True
    N_CLASSES_PER_TASK = 20
    N_EPOCHS = 100
    BATCH_SIZE = 32
    LR = 0.03
    MEAN = (0.4802, 0.4480, 0.3975)
    STD = (0.2770, 0.2691, 0.2821)

    add_args = staticmethod(add_width_arg)

    def load_splits(self):
        folder = os.path.join(self.args.data_path, FOLDER)
        if not os.path.isdir(folder):
            download_or_fail(URL, self.args.data_path, "tiny-imagenet-200.zip", ZIP_MD5, folder)
        return cached_splits(folder)

    def get_backbone(self):
        return ResNet18(self.n_classes, nf=self.args.nf)

    def train_augmentation(self):
        return nn.Sequential(PaddedRandomCrop((64, 64), padding=4), K.RandomHorizontalFlip())
