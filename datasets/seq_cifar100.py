from torchvision.datasets import CIFAR100

from datasets import register_dataset
from datasets.base import Splits
from datasets.cifar_files import load_release
from datasets.seq_cifar10 import SequentialCIFAR10


@register_dataset("seq-cifar100")
class SequentialCIFAR100(SequentialCIFAR10):
    """CIFAR-100, 10 tasks × 10 classes, ResNet18; the X-DER paper's protocol (Boschini et al. 2022):
    50 epochs, batch 32, lr 0.03 divided by 10 at epochs 35 and 45 of every task."""
    N_TASKS = 10
    N_CLASSES_PER_TASK = 10
    N_EPOCHS = 50
    BATCH_SIZE = 32
    LR = 0.03
    LR_MILESTONES = (35, 45)
    MEAN = (0.5071, 0.4865, 0.4409)
    STD = (0.2673, 0.2564, 0.2762)

    def load_splits(self):
        return Splits(*load_release(self.args.data_path, CIFAR100, "fine_labels"))
