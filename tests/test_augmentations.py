"""The device-only augmentations draw what kornia's modules draw and give their output: exactly for the crop
and the colour jiggle, up to float rounding for the resized crop; none of them reads the device from the host."""
import kornia.augmentation as K
import pytest
import torch

from datasets.augmentations import ColorJiggleInOrder, PaddedRandomCrop, ResizedCrop
from tests.test_host_sync import SyncGuard


def both(ours, theirs, images, seed):
    """Our module's output and kornia's from the same seed, ours under the host-read guard (the jiggle on the
    path an accelerator takes), and that both drew the same count of random numbers."""
    ours = ours.in_order if isinstance(ours, ColorJiggleInOrder) else ours
    torch.manual_seed(seed)
    with SyncGuard():
        mine = ours(images)
    after_ours = torch.rand(1)
    torch.manual_seed(seed)
    reference = theirs(images)
    assert torch.equal(after_ours, torch.rand(1)), "a different number of draws from the stream"
    return mine, reference


@pytest.fixture
def images():
    return torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padded_crop_is_kornias_crop_exactly(images, seed):
    mine, reference = both(PaddedRandomCrop((32, 32), padding=4), K.RandomCrop((32, 32), padding=4), images, seed)
    assert torch.equal(mine, reference)
    assert (mine == 0).flatten(1).any(1).float().mean() > 0.5, "crops that reach into the zero padding"


def test_padded_crop_on_a_rectangle():
    images = torch.rand(4, 1, 6, 9)
    mine, reference = both(PaddedRandomCrop((6, 9), padding=2), K.RandomCrop((6, 9), padding=2), images, 5)
    assert torch.equal(mine, reference)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resized_crop_is_kornias_up_to_rounding(images, seed):
    mine, reference = both(ResizedCrop((32, 32), scale=(0.2, 1.0)),
                           K.RandomResizedCrop((32, 32), scale=(0.2, 1.0)), images, seed)
    assert mine.shape == reference.shape
    torch.testing.assert_close(mine, reference, rtol=0, atol=1e-5)
    assert (mine - images).abs().amax() > 0.1


def test_resized_crop_of_the_whole_image_is_the_image():
    crop = ResizedCrop((8, 8), scale=(1.0, 1.0))
    crop.draws = K.RandomResizedCrop((8, 8), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    images = torch.rand(3, 2, 8, 8)
    assert torch.equal(crop(images), images)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jiggle_is_kornias_exactly(images, seed):
    mine, reference = both(ColorJiggleInOrder(0.4, 0.4, 0.4, 0.1, p=0.8),
                           K.ColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.8), images, seed)
    assert torch.equal(mine, reference)


def test_jiggle_of_one_channel_is_kornias_exactly():
    images = torch.rand(16, 1, 28, 28)
    mine, reference = both(ColorJiggleInOrder(0.4, 0.4, p=0.8), K.ColorJiggle(0.4, 0.4, p=0.8), images, 3)
    assert torch.equal(mine, reference)


def test_jiggle_follows_the_drawn_order():
    """Brightness then contrast differs from contrast then brightness; each drawn order gives kornia's."""
    images = torch.rand(8, 3, 16, 16)
    orders = set()
    for seed in range(12):
        torch.manual_seed(seed)
        orders.add(tuple(K.ColorJiggle(0.4, 0.4, 0.4, 0.1).forward_parameters(images.shape)["order"].tolist()))
        mine, reference = both(ColorJiggleInOrder(0.4, 0.4, 0.4, 0.1), K.ColorJiggle(0.4, 0.4, 0.4, 0.1), images, seed)
        assert torch.equal(mine, reference)
    assert len(orders) > 6
