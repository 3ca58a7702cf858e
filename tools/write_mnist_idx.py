"""python tools/write_mnist_idx.py FOLDER: the suite's seq-mnist-5k split (the same 4,000 training and 1,000 test
images, in the suite's order) as the four raw MNIST files Mammoth's seq-mnist reads through torchvision:
FOLDER/MNIST/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (big-endian magic 2051 and 2049, uint8),
with FOLDER/MNIST/MyMNIST a link to MNIST (Mammoth's training set class is named MyMNIST, and torchvision looks
for its files under that name). Run Mammoth with --base_path FOLDER/ for a side by side on the same data."""
import os
import struct
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datasets import DATASETS  # noqa: E402


def write_idx(path, array):
    """IDX: magic (0, 0, dtype 0x08 = uint8, number of dimensions), each dimension as big-endian uint32, data."""
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype("uint8").tobytes())


def main(folder):
    splits = DATASETS.get("seq-mnist-5k")(SimpleNamespace()).load_splits()
    raw = os.path.join(folder, "MNIST", "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for prefix, images, labels in (("train", splits.train_images, splits.train_labels),
                                   ("t10k", splits.test_images, splits.test_labels)):
        write_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), images.squeeze(1).numpy())
        write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), labels.numpy())
    link = os.path.join(folder, "MNIST", "MyMNIST")
    if not os.path.lexists(link):
        os.symlink("MNIST", link)
    print(f"wrote {len(splits.train_labels)} training and {len(splits.test_labels)} test images to {raw}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n")[0])
    main(sys.argv[1])
