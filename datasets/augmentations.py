"""Kornia's random augmentations, applied without reading the device from the host.

Kornia draws an augmentation's parameters, and then reads them back to the host to apply three of them:
RandomCrop (the crop box, through `unique` and `tolist`), RandomResizedCrop (each box, to slice it) and
ColorJiggle (the random order of its four steps, and whether each step's factors are neutral). On a GPU each
read makes the training step wait for the device instead of queueing work. The modules here keep kornia's
draws, by calling the kornia module's own `forward_parameters` on the host (HostDraws), so a seed draws the
same random numbers in the same order as before, and apply them on the device with index arithmetic and
`torch.where` only. The crop and the jiggle give kornia's output exactly; the resized crop gives it up to
float rounding (a resize by index arithmetic, where kornia calls `interpolate` once per box)."""
import kornia.augmentation as K
import torch
import torch.nn.functional as F
from kornia.enhance import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation
from torch import nn


def onto(draws, device, dtype=None):
    """A draw made on the host onto the images' device without waiting for the device's queued work: a blocking
    copy from pageable host memory ends in a stream synchronisation, a non-blocking one is staged by CUDA before
    the call returns (so the draw may be freed at once). The dtype is changed on the host first, as a blocking
    copy changes it, so the same bits arrive."""
    draws = draws if dtype is None else draws.to(dtype)
    return draws.to(device, non_blocking=torch.device(device).type == "cuda")


class HostDraws(nn.Module):
    """Base of the modules below: `draws`, the kornia module whose random parameters they apply, stays off the
    module tree, so moving a pipeline to a GPU leaves its generator on the host. Moved along, kornia's crop and
    jiggle generators still draw some numbers on the host and copy them over with a blocking copy inside
    `forward_parameters` (kornia issue #4426): a stream synchronisation per draw, seen on an H200. Drawn on the
    host, a seed gives the same parameters on every device, and `onto` copies them over without one."""

    def __setattr__(self, name, value):
        if name == "draws":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class PaddedRandomCrop(HostDraws):
    """kornia's `RandomCrop(size, padding=padding)` (zero padding on every side), cropped by two gathers."""

    def __init__(self, size, padding):
        super().__init__()
        self.draws = K.RandomCrop(size, padding=padding)
        self.size, self.padding = tuple(size), padding

    def forward(self, images):
        corners = onto(self.draws.forward_parameters(images.shape)["src"], images.device, torch.long)
        canvas = F.pad(images, [self.padding] * 4)
        rows = corners[:, 0, 1, None] + torch.arange(self.size[0], device=images.device)
        cols = corners[:, 0, 0, None] + torch.arange(self.size[1], device=images.device)
        return take_rows(take_cols(canvas, cols), rows)


class ResizedCrop(HostDraws):
    """kornia's `RandomResizedCrop(size, scale)` (bilinear, corners aligned, as kornia's defaults): each drawn
    box is resized to `size` by gathering its four neighbours per output pixel, the neighbours clamped to the
    box as a slice of it would be."""

    def __init__(self, size, scale):
        super().__init__()
        self.draws = K.RandomResizedCrop(size, scale=scale)
        self.size = tuple(size)

    def forward(self, images):
        box = onto(self.draws.forward_parameters(images.shape)["src"], images.device, torch.long)
        x = box_axis(box[:, 0, 0], box[:, 1, 0], self.size[1])
        y = box_axis(box[:, 0, 1], box[:, 2, 1], self.size[0])
        cols = take_cols(images, x.low) * (1 - x.weight)[:, None, None, :] \
            + take_cols(images, x.high) * x.weight[:, None, None, :]
        return take_rows(cols, y.low) * (1 - y.weight)[:, None, :, None] \
            + take_rows(cols, y.high) * y.weight[:, None, :, None]


class ColorJiggleInOrder(HostDraws):
    """kornia's `ColorJiggle(brightness, contrast, saturation, hue, p)`: its draws (factors, the order of the
    four steps, which images it applies to) applied with `torch.where`. Each position of the order computes
    every step that can change an image and keeps the one the order names there; a step whose range is only
    its neutral value (saturation and hue of a one-channel jiggle) is left out, as kornia skips it. That is
    four times kornia's steps (the RGB jiggle of 128 CIFAR images: 202 ms against 52 ms on one CPU thread), so
    on the CPU, where reading the order costs nothing, kornia's module runs instead: the same draws and the
    same output."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, p=1.0):
        super().__init__()
        self.draws = K.ColorJiggle(brightness, contrast, saturation, hue, p=p)
        steps = (lambda x, f: adjust_brightness(x, f - 1), adjust_contrast, adjust_saturation,
                 lambda x, f: adjust_hue(x, f * 2 * torch.pi))
        self.steps = [(index, step) for index, (step, amount) in
                      enumerate(zip(steps, (brightness, contrast, saturation, hue))) if amount != 0]

    def forward(self, images):
        return self.draws(images) if images.device.type == "cpu" else self.in_order(images)

    def in_order(self, images):
        params = self.draws.forward_parameters(images.shape)
        applied = onto(params["batch_prob"] > 0.5, images.device).view(-1, 1, 1, 1)
        factors = [onto(params[key], images.device) for key in
                   ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")]
        order = onto(params["order"], images.device)
        out = torch.where(applied, images, 0.5).clamp(0, 1)
        for position in range(4):
            stepped = out
            for index, step in self.steps:
                stepped = torch.where(order[position] == index, step(out, factors[index]), stepped)
            out = stepped
        return torch.where(applied, out.clamp(0, 1), images)


class Axis:
    """The two neighbours and the weight of the second, per output pixel, of a box's side resized with
    corners aligned: box start `low` to end `high` (inclusive), output length `length`."""

    def __init__(self, low, high, weight):
        self.low, self.high, self.weight = low, high, weight


def box_axis(start, end, length):
    extent = (end - start).float()
    step = extent / max(length - 1, 1)
    position = torch.arange(length, device=start.device, dtype=torch.float32)[None] * step[:, None]
    floor = position.floor().long().clamp(min=0)
    floor = torch.minimum(floor, (end - start)[:, None])
    upper = torch.minimum(floor + 1, (end - start)[:, None])
    return Axis(start[:, None] + floor, start[:, None] + upper, position - floor)


def take_cols(images, cols):
    """images (B, C, H, W) at per-image column indices cols (B, w) -> (B, C, H, w)."""
    b, c, h, _ = images.shape
    return images.gather(3, cols[:, None, None, :].expand(b, c, h, cols.shape[1]))


def take_rows(images, rows):
    """images (B, C, H, W) at per-image row indices rows (B, h) -> (B, C, h, W)."""
    b, c, _, w = images.shape
    return images.gather(2, rows[:, None, :, None].expand(b, c, rows.shape[1], w))
