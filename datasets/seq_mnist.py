import contextlib
import io

from torchvision.datasets import MNIST

from backbone.mlp import MLP
from datasets import register_dataset
from datasets.base import ContinualDataset, DataError, Splits
from datasets.downloads import require_writable


@register_dataset("seq-mnist")
class SequentialMNIST(ContinualDataset):
    """MNIST, 5 tasks × 2 classes; defaults of the DER paper (Buzzega et al. 2020): 1 epoch, batch 10."""
    N_TASKS = 5
    N_CLASSES_PER_TASK = 2
    N_EPOCHS = 1
    BATCH_SIZE = 10
    LR = 0.03

    def load_splits(self):
        root = self.args.data_path
        try:
            train, test = (MNIST(root, train=split) for split in (True, False))
        except RuntimeError:
            require_writable(root, "MNIST/raw/train-images-idx3-ubyte.gz", f"{root}/MNIST/raw")
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    train, test = (MNIST(root, train=split, download=True) for split in (True, False))
            except (RuntimeError, OSError) as error:
                reason = " ".join(str(error).split())
                raise DataError(f"seq-mnist: MNIST is not in {root}/MNIST/raw and could not be downloaded "
                                f"({reason}); place the four official *-ubyte.gz files there") from None
        return Splits(train.data[:, None], train.targets.long(), test.data[:, None], test.targets.long())

    def get_backbone(self):
        return MLP(28 * 28, self.n_classes)
