import kornia.augmentation as K
from torch import nn
from torchvision.datasets import CIFAR10

from backbone.resnet18 import ResNet18, add_width_arg
from datasets import register_dataset
from datasets.augmentations import PaddedRandomCrop
from datasets.base import ContinualDataset, Splits
from datasets.cifar_files import load_release


@register_dataset("seq-cifar10")
class SequentialCIFAR10(ContinualDataset):
    """CIFAR-10, 5 tasks × 2 classes, ResNet18; defaults of the DER paper (Buzzega et al. 2020):
    50 epochs, batch 32, lr 0.03."""
    N_TASKS = 5
    CONVOLUTIONAL = True
    N_CLASSES_PER_TASK = 2
    N_EPOCHS = 50
    BATCH_SIZE = 32
    LR = 0.03
    MEAN = (0.4914, 0.4822, 0.4465)
    STD = (0.2470, 0.2435, 0.2615)

    add_args = staticmethod(add_width_arg)

    def load_splits(self):
        return Splits(*load_release(self.args.data_path, CIFAR10, "labels"))

    def get_backbone(self):
        return ResNet18(self.n_classes, nf=self.args.nf)

    def train_augmentation(self):
        return nn.Sequential(PaddedRandomCrop((32, 32), padding=4), K.RandomHorizontalFlip())
