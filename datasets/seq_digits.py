import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from backbone.mlp import MLP
from datasets import register_dataset
from datasets.base import ContinualDataset, Splits


@register_dataset("seq-digits")
class SequentialDigits(ContinualDataset):
    """scikit-learn's bundled 8×8 digits (1,797 images), 5 tasks × 2 classes, fully offline.

    A fixed stratified 75/25 split (random_state 0); pixels 0..16 are rescaled to uint8 0..255.
    Defaults: the DER paper's S-MNIST protocol (1 epoch, batch 10, lr 0.03), which this dataset stands
    in for; chosen from the study in the README ("Grids and tables"), grids/digits-masks-*.yaml.
    """
    N_TASKS = 5
    N_CLASSES_PER_TASK = 2
    N_EPOCHS = 1
    BATCH_SIZE = 10
    LR = 0.03
    BUNDLED = True

    def load_splits(self):
        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
        x_train, x_test, y_train, y_test = train_test_split(
            images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
        return Splits(torch.from_numpy(x_train), torch.from_numpy(y_train).long(),
                      torch.from_numpy(x_test), torch.from_numpy(y_test).long())

    def get_backbone(self):
        return MLP(8 * 8, self.n_classes)
