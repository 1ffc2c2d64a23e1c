"""Image augmentation on whole batches of tensors, as a searchable part of an image architecture.

torchvision's ``transforms.v2`` would be the library of choice, but no torchvision wheel imports beside the CPU
build of torch 2.13 that this project pins (PyPI's 0.28 lacks its C++ operators for it; 0.29 needs torch 2.14's
CUDA build), so the four transforms the image case studies need are written here in plain torch, one call per
batch, no per-sample Python:

* ``flip``: horizontal flip of a random half of the batch;
* ``shift``: translation by up to ``shift`` of the width/height in pixels (zero fill), i.e. random crop with
  padding;
* ``rotate``: rotation by a uniform angle in ``[-rotate, rotate]`` degrees (bilinear, zero fill);
* ``color``: brightness and contrast factors in ``[1 - color, 1 + color]`` (and saturation for RGB).

Inputs are raw pixel values (the model standardises inside), so every transform is scale-free. An
:class:`Augment` is applied by the trainer to the training batches of each fold only; validation, held-out
and exported models never see it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["Augment", "AUGMENT_KEYS", "augmentation_from_arch"]

AUGMENT_KEYS = ("aug_flip", "aug_shift", "aug_rotate", "aug_color")
_GRAY = (0.299, 0.587, 0.114)


class Augment:
    """Random flips, shifts, rotations and colour jitter of a batch ``(n, C, H, W)``.

    Randomness comes from torch's global generator, which the trainer seeds: the same seed gives the same
    augmented batches.

    Example:
        >>> aug = Augment(flip=True, shift=0.1)
        >>> aug(torch.zeros(4, 1, 8, 8)).shape
        torch.Size([4, 1, 8, 8])
    """

    def __init__(self, flip: bool = False, shift: float = 0.0, rotate: float = 0.0, color: float = 0.0) -> None:
        if not 0.0 <= shift < 0.5 or not 0.0 <= rotate <= 180.0 or not 0.0 <= color < 1.0:
            raise ValueError(f"Augment needs 0 <= shift < 0.5, 0 <= rotate <= 180 and 0 <= color < 1, but got "
                             f"{shift=}, {rotate=}, {color=}.")
        self.flip, self.shift, self.rotate, self.color = bool(flip), float(shift), float(rotate), float(color)

    @property
    def active(self) -> bool:
        return self.flip or self.shift > 0 or self.rotate > 0 or self.color > 0

    def __repr__(self) -> str:
        return f"Augment(flip={self.flip}, shift={self.shift}, rotate={self.rotate}, color={self.color})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not self.active:
            return x
        n, c, h, w = x.shape
        if self.flip:
            x = torch.where(torch.rand(n, 1, 1, 1, device=x.device) < 0.5, x.flip(-1), x)
        if self.rotate > 0:
            x = self._rotate(x)
        pad = (int(self.shift * h + 0.5), int(self.shift * w + 0.5))  # halves round up: 0.0625 of 8 px is 1 px
        if max(pad) > 0:
            x = self._shift(x, *pad)
        if self.color > 0:
            x = self._color(x)
        return x

    def _rotate(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(self.rotate)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        # a rigid rotation in pixels, written in affine_grid's coordinates (each side normalised to [-1, 1])
        theta = torch.stack([torch.stack([cos, -sin * h / w, zero], 1), torch.stack([sin * w / h, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def _shift(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
        """A random ``H x W`` crop of the zero-padded batch, one offset per sample, by one gather."""
        n, c, h, w = x.shape
        padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
        dy = torch.randint(0, 2 * pad_h + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * pad_w + 1, (n,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(n, c, h, w + 2 * pad_w)
        picked = padded.gather(2, rows)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(n, c, h, w)
        return picked.gather(3, cols)

    def _color(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        top = x.amax(dim=(1, 2, 3), keepdim=True)

        def factor() -> torch.Tensor:
            return 1.0 + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * self.color

        x = x * factor()  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor() + mean  # contrast
        if c == 3:  # saturation: blend with the grey image
            gray = (x * torch.tensor(_GRAY, device=x.device, dtype=x.dtype)[None, :, None, None]).sum(1, keepdim=True)
            x = (x - gray) * factor() + gray
        return torch.minimum(x.clamp_min(0.0), top)


def augmentation_from_arch(arch: Mapping[str, Any]) -> Augment | None:
    """The :class:`Augment` an architecture asks for (keys ``aug_*``), or None when it asks for none."""
    aug = Augment(flip=bool(arch.get("aug_flip", False)), shift=float(arch.get("aug_shift", 0.0)),
                  rotate=float(arch.get("aug_rotate", 0.0)), color=float(arch.get("aug_color", 0.0)))
    return aug if aug.active else None
