"""MNIST-360 (Buzzega et al., "Dark Experience for General Continual Learning: a Strong, Simple Baseline", NeurIPS
2020, §5): general continual learning without task boundaries. Digits 0-8 stream in consecutive pairs, (0, 1),
(1, 2), ..., (7, 8), (8, 0), three rounds (27 pairs), every image rotated by an angle that grows as its digit is
streamed, so that the stream shifts both suddenly (the pair changes) and smoothly (the rotation turns).

Built as the release that produced the published figures builds it (aimagelab/mammoth, tag neurips2020:
datasets/mnist_360.py, datasets/transforms/rotation.py, utils/continual_training.py):
- digit d's n_d training images (in the split's order) are cut into six slices of n_d // 6 + 1 (the last one
  shorter), one for each of its six appearances, used from the last slice to the first (Mammoth pops them);
- a pair (a, b) is streamed in steps of `batch_size`: a step takes round(r_a / (r_a + r_b) · batch_size) images of
  a (Python's round, ties to even; at most r_a) and the rest of the batch from b (at most r_b), r the images left
  in each slice; the pair ends after the step that empties either slice (the other slice's rest is never
  streamed), so only a pair's last step can be short;
- each image of a step is drawn uniformly from its slice, with replacement (Mammoth draws each with a fresh
  iterator of a shuffling DataLoader), and a's images come first in the step;
- the c-th image of digit d streamed (c counted over all its appearances) is turned counter-clockwise by
  (c · 360 / n_d + (d − 1) · 60) mod 360 degrees (IncrementalRotation(init_deg=(d − 1)·60,
  increase_per_iteration=360 / n_d)), with PIL's nearest-neighbour rotation about the image centre, black outside
  (torchvision's F.rotate on a PIL image, Pillow 6.1): rotate_like_pil below gives PIL's pixels exactly;
- test: each digit's m_d test images, the k-th at k · 360 / m_d degrees (IncrementalRotation() with
  increase 360 / m_d), one accuracy over all of them: correct / total, the argmax over the network's ten outputs
  (MNISTMLP(784, 10): the tenth, digit 9, never a label).
Where this differs from Mammoth: Mammoth gives the test angles to images drawn at random, batch by batch with
replacement; here every test image is evaluated once, at the k-th angle of a seeded permutation of its digit's
images (the same angles, each image once). The draws and that permutation come from a generator seeded with
--seed, made when the dataset is prepared (a run and its resume build the same stream).

For the suite's evaluation MNIST-360 is ONE task of ten classes (N_TASKS = 1): that task's Class-IL accuracy is
Mammoth's MNIST-360 accuracy (the published figure), Task-IL equals it, and a curve point or segment end evaluates
the same whole test split. BOUNDARIES = False: the stream never announces a task; stream_order() returns the 27
pairs as its segments, each trained in order in batches of --batch_size (which reproduces Mammoth's steps).
"""
import math

import torch

from backbone.mlp import MLP
from datasets import register_dataset
from datasets.base import ContinualDataset, DataError, Splits
from datasets.seq_mnist import SequentialMNIST
from datasets.seq_mnist_5k import SequentialMNIST5k

DIGITS = 9  # 0..8
ROUNDS = 3
APPEARANCES = 2 * ROUNDS  # each digit is in two pairs per round
CHUNK = 4096  # images rotated at a time


def pair_sequence():
    """The 27 pairs in streaming order."""
    return [(d, (d + 1) % DIGITS) for _ in range(ROUNDS) for d in range(DIGITS)]


def slices(n):
    """(start, end) of the slices of a digit's n training images, in the order its appearances use them."""
    size = n // APPEARANCES + 1
    return [(min(k * size, n), min((k + 1) * size, n)) for k in reversed(range(APPEARANCES))]


def train_angle(digit, count, n):
    """Degrees of the count-th streamed image of `digit`, which has n training images (Mammoth's float arithmetic)."""
    return (count * (360.0 / n) + (digit - 1) * 60) % 360


def pair_steps(left_a, left_b, batch_size):
    """[(images of a, images of b)] of each step of a pair whose slices hold left_a and left_b images (a pair with no
    image left in either takes no step)."""
    steps = []
    while left_a + left_b > 0:
        take_a = min(round(left_a / (left_a + left_b) * batch_size), left_a)
        take_b = min(batch_size - take_a, left_b)
        steps.append((take_a, take_b))
        left_a, left_b = left_a - take_a, left_b - take_b
        if left_a <= 0 or left_b <= 0:
            break
    return steps


def draw(start, end, count, generator):
    """`count` positions drawn uniformly from [start, end), with replacement."""
    return torch.randint(start, end, (count,), generator=generator).tolist() if count else []


def build_stream(digits, batch_size, generator):
    """(indices into the training split, angles in degrees, images per pair) of the stream, from the digit of each
    training image ([N] int, digits other than 0-8 left out)."""
    members = [torch.nonzero(digits == d).flatten().tolist() for d in range(DIGITS)]
    n = [len(m) for m in members]
    unused = [slices(k) for k in n]
    streamed = [0] * DIGITS
    indices, angles, lengths = [], [], []
    for pair in pair_sequence():
        (start_a, end_a), (start_b, end_b) = (unused[d].pop(0) for d in pair)
        steps = pair_steps(end_a - start_a, end_b - start_b, batch_size)
        draws = [iter(draw(start, end, sum(step[i] for step in steps), generator))
                 for i, (start, end) in enumerate(((start_a, end_a), (start_b, end_b)))]
        for step in steps:
            for i, (digit, take) in enumerate(zip(pair, step)):
                indices += [members[digit][next(draws[i])] for _ in range(take)]
                angles += [train_angle(digit, streamed[digit] + c, n[digit]) for c in range(take)]
                streamed[digit] += take
        lengths.append(sum(map(sum, steps)))
    return indices, angles, lengths


def evaluation_order(digits, generator):
    """(indices into the test split, angles): each digit's m test images once, the k-th of a seeded permutation at
    k · 360 / m degrees."""
    indices, angles = [], []
    for d in range(DIGITS):
        members = torch.nonzero(digits == d).flatten()
        m = len(members)
        indices += members[torch.randperm(m, generator=generator)].tolist()
        angles += [k * (360.0 / m) % 360 for k in range(m)]
    return indices, angles


def pil_matrix(degrees, width, height):
    """PIL's Image.rotate(degrees) as the 16.16 fixed-point affine map its nearest-neighbour transform runs
    (Pillow's Image.rotate and Geometry.c affine_fixed): (a0, a1, a2, a3, a4, a5), the source pixel of output (x, y)
    being ((a2 + x·a0 + y·a1) >> 16, (a5 + x·a3 + y·a4) >> 16)."""
    angle = -math.radians(degrees % 360.0)
    a, b, d, e = (round(math.cos(angle), 15), round(math.sin(angle), 15), round(-math.sin(angle), 15),
                  round(math.cos(angle), 15))
    cx, cy = width / 2, height / 2
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy

    def fixed(v):
        return math.floor(v * 65536.0 + 0.5)
    return fixed(a), fixed(b), fixed(c + a * 0.5 + b * 0.5), fixed(d), fixed(e), fixed(f + d * 0.5 + e * 0.5)


def rotate_like_pil(images, degrees):
    """uint8 [N, C, H, W] turned counter-clockwise by degrees[i] about the centre, nearest neighbour, black outside:
    the pixels of PIL's Image.rotate (Mammoth's torchvision F.rotate on PIL images), computed with torch."""
    out = []
    height, width = images.shape[-2:]
    y = torch.arange(height, dtype=torch.int32, device=images.device)[:, None]
    x = torch.arange(width, dtype=torch.int32, device=images.device)[None, :]
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        m = torch.tensor([pil_matrix(d, width, height) for d in degrees[start:start + CHUNK]],
                         dtype=torch.int32, device=images.device)[:, :, None, None]
        source_x = (m[:, 2] + x * m[:, 0] + y * m[:, 1]) >> 16
        source_y = (m[:, 5] + x * m[:, 3] + y * m[:, 4]) >> 16
        inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
        flat = (source_y.clamp(0, height - 1) * width + source_x.clamp(0, width - 1)).flatten(1).long()
        picked = chunk.flatten(2).gather(2, flat[:, None].expand(-1, chunk.shape[1], -1)).view_as(chunk)
        out.append(picked * inside[:, None])
    return torch.cat(out) if out else images.clone()


def rotated(images, labels, indices, angles):
    """(images[indices] each turned by its angle, labels[indices])."""
    indices = torch.tensor(indices, dtype=torch.int64, device=labels.device)
    return rotate_like_pil(images[indices], angles), labels[indices]


class MNIST360Stream(ContinualDataset):
    """MNIST-360's stream and test protocol over a training and test split of MNIST digits (the module's
    docstring); subclasses say where the digits come from (load_splits keeps digits 0-8)."""
    N_TASKS = 1
    N_CLASSES_PER_TASK = 10  # Mammoth's MNISTMLP(784, 10): digit 9 is an output, never a label
    N_EPOCHS = 1
    BATCH_SIZE = 16  # DER's best arguments at buffer 200 on MNIST-360 (Mammoth neurips2020 utils/best_args.py)
    LR = 0.1
    BOUNDARIES = False

    def prepare(self, device, splits=None):
        """The splits as ContinualDataset.prepare makes them (a --validation part held out as the test split), then
        the stream and the rotated test split built from them with a generator seeded by --seed."""
        super().prepare(device, splits)
        digit_of = torch.as_tensor(self.class_order)
        generator = torch.Generator().manual_seed(getattr(self.args, "seed", 0))
        batch_size = getattr(self.args, "batch_size", None) or self.BATCH_SIZE
        splits = self.splits
        indices, angles, self.lengths = build_stream(digit_of[splits.train_labels.cpu()], batch_size, generator)
        test_indices, test_angles = evaluation_order(digit_of[splits.test_labels.cpu()], generator)
        self.splits = Splits(*rotated(splits.train_images, splits.train_labels, indices, angles),
                             *rotated(splits.test_images, splits.test_labels, test_indices, test_angles))

    def stream_order(self, generator):
        """The 27 pairs, each a run of consecutive indices of the prepared training split (the draws were made in
        prepare(), seeded by --seed; `generator` is not read)."""
        ends = torch.tensor(self.lengths).cumsum(0).tolist()
        device = self.splits.train_labels.device
        return [torch.arange(end - length, end, device=device) for end, length in zip(ends, self.lengths)]

    def get_backbone(self):
        return MLP(28 * 28, self.n_classes)


def digits_0_to_8(splits):
    """The splits without digit 9."""
    keep_train, keep_test = splits.train_labels < DIGITS, splits.test_labels < DIGITS
    return Splits(splits.train_images[keep_train], splits.train_labels[keep_train], splits.test_images[keep_test],
                  splits.test_labels[keep_test])


@register_dataset("mnist-360")
class MNIST360(MNIST360Stream):
    """MNIST-360 (Buzzega et al. 2020, §5; Mammoth's mnist_360 at tag neurips2020): digits 0-8 of the full MNIST
    in consecutive pairs with an incremental rotation, three rounds, no task boundaries; one accuracy over the
    rotated test digits (read from seq-mnist's MNIST files, downloaded as seq-mnist does)."""

    def load_splits(self):
        try:
            return digits_0_to_8(SequentialMNIST.load_splits(self))
        except DataError as error:
            raise DataError(f"mnist-360 reads seq-mnist's MNIST: {error}") from None


@register_dataset("mnist-360-5k")
class MNIST3605k(MNIST360Stream):
    """Stand-in for mnist-360: MNIST-360's stream and test built from the 5,000-image MNIST sample seq-mnist-5k
    reads (3,600 training and 900 test images of digits 0-8, not the full MNIST's 54,051 and 8,991 of the published
    figures): a check of the path, not the benchmark.

    It takes mnist-360's --config best entries (CONFIG_DATASET), as seq-mnist-5k takes seq-mnist's."""
    BUNDLED = True
    CONFIG_DATASET = "mnist-360"

    def load_splits(self):
        return digits_0_to_8(SequentialMNIST5k.load_splits(self))

    def provenance(self):
        return SequentialMNIST5k.provenance(self)
