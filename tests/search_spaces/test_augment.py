from __future__ import annotations

import pytest
import torch

from autoarch.search_spaces.augment import AUGMENT_KEYS, Augment, augmentation_from_arch


def _images(n: int = 64, c: int = 1, h: int = 6, w: int = 6, seed: int = 0) -> torch.Tensor:
    """Strictly positive random pixels: a zero in an output can only come from the fill."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 200.0 + 10.0


def _translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[..., i, j] = x[..., i + dy, j + dx]``, zero where that falls outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    src_rows = slice(max(0, dy), min(h, h + dy))
    dst_rows = slice(max(0, -dy), min(h, h - dy))
    src_cols = slice(max(0, dx), min(w, w + dx))
    dst_cols = slice(max(0, -dx), min(w, w - dx))
    out[..., dst_rows, dst_cols] = x[..., src_rows, src_cols]
    return out


def _offset_of(sample: torch.Tensor, original: torch.Tensor, max_dy: int, max_dx: int) -> tuple[int, int] | None:
    for dy in range(-max_dy, max_dy + 1):
        for dx in range(-max_dx, max_dx + 1):
            if torch.equal(sample, _translate(original, dy, dx)):
                return dy, dx
    return None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_augmentation_keeps_shape_and_dtype(dtype: torch.dtype) -> None:
    x = _images(8, 3, 10, 12).to(dtype)
    out = Augment(flip=True, shift=0.2, rotate=30.0, color=0.4)(x)
    assert out.shape == (8, 3, 10, 12)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


def test_inactive_augment_returns_the_input_object() -> None:
    x = _images(4)
    aug = Augment()
    assert not aug.active
    assert aug(x) is x
    assert Augment(flip=False, shift=0.0, rotate=0.0, color=0.0)(x) is x


def test_active_flags() -> None:
    assert Augment(flip=True).active
    assert Augment(shift=0.1).active
    assert Augment(rotate=5.0).active
    assert Augment(color=0.1).active


def test_same_seed_same_output_other_seed_differs() -> None:
    x = _images(16, 3, 8, 8)
    aug = Augment(flip=True, shift=0.25, rotate=20.0, color=0.3)
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    b = aug(x)
    torch.manual_seed(2)
    c = aug(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, x)
    torch.testing.assert_close(x, _images(16, 3, 8, 8), rtol=0, atol=0)  # the input is not modified in place


def test_flip_gives_each_sample_or_its_mirror_and_both_occur() -> None:
    x = _images(64, 2, 5, 7)
    out = Augment(flip=True)(x)
    same = [torch.equal(out[i], x[i]) for i in range(64)]
    mirrored = [torch.equal(out[i], x[i].flip(-1)) for i in range(64)]
    assert all(s != m for s, m in zip(same, mirrored, strict=True))  # exactly one: random images are asymmetric
    assert 0 < sum(mirrored) < 64
    assert 10 <= sum(mirrored) <= 54  # a fair coin per sample


def test_flip_is_horizontal_not_vertical() -> None:
    x = _images(64, 1, 5, 5)
    out = Augment(flip=True)(x)
    assert not any(torch.equal(out[i], x[i].flip(-2)) for i in range(64))


def test_shift_is_an_integer_translation_with_zero_fill_within_the_bound() -> None:
    x = _images(64, 1, 6, 6)
    aug = Augment(shift=0.34)  # round(0.34 * 6) = 2 pixels
    out = aug(x)
    offsets = [_offset_of(out[i], x[i], 2, 2) for i in range(64)]
    assert None not in offsets, "some sample is not a translation by at most 2 pixels with zero fill"
    # the offsets are random per sample and reach the bound in both directions
    assert len(set(offsets)) >= 8
    dys = {o[0] for o in offsets}
    dxs = {o[1] for o in offsets}
    assert {-2, 2} <= dys and {-2, 2} <= dxs


def test_small_shift_stays_within_one_pixel() -> None:
    x = _images(64, 2, 6, 6, seed=3)
    out = Augment(shift=0.2)(x)  # round(1.2) = 1
    offsets = [_offset_of(out[i], x[i], 1, 1) for i in range(64)]
    assert None not in offsets
    assert len(set(offsets)) == 9  # all 9 offsets in [-1, 1]^2 occur over 64 samples
    for i, (dy, dx) in enumerate(offsets):  # the channels of a sample move together
        assert torch.equal(out[i], _translate(x[i], dy, dx))


def test_shift_bound_is_per_side_on_non_square_images() -> None:
    x = _images(64, 1, 4, 8, seed=4)
    out = Augment(shift=0.25)(x)  # 1 pixel vertically, 2 horizontally
    offsets = [_offset_of(out[i], x[i], 1, 2) for i in range(64)]
    assert None not in offsets
    assert {o[0] for o in offsets} == {-1, 0, 1}
    assert {o[1] for o in offsets} == {-2, -1, 0, 1, 2}


def test_flip_alone_keeps_the_pixel_multiset_of_each_sample() -> None:
    x = _images(32, 3, 6, 6)
    out = Augment(flip=True, rotate=0.0)(x)
    for i in range(32):
        torch.testing.assert_close(out[i].flatten().sort().values, x[i].flatten().sort().values, rtol=0, atol=0)


def test_rotation_of_a_constant_image_keeps_the_centre_and_can_blank_corners() -> None:
    x = torch.full((64, 1, 7, 7), 5.0)
    out = Augment(rotate=180.0)(x)
    torch.testing.assert_close(out[:, 0, 3, 3], torch.full((64,), 5.0), rtol=0, atol=1e-4)
    assert (out >= -1e-5).all() and (out <= 5.0 + 1e-4).all()
    corners = out[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 0.5).any()  # some angle near 45 degrees moves a corner outside the image: zero fill
    assert not torch.allclose(out, x)


def test_rotation_angle_is_in_degrees() -> None:
    # 1 degree barely moves a 7x7 image; an angle read as radians (57 degrees) would blank the corners.
    x = torch.full((64, 1, 7, 7), 1.0)
    out = Augment(rotate=1.0)(x)
    assert out.min() > 0.85
    torch.testing.assert_close(out[:, :, 1:-1, 1:-1], x[:, :, 1:-1, 1:-1], rtol=0, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_stays_between_zero_and_the_sample_maximum(channels: int) -> None:
    x = _images(32, channels, 6, 6)
    x[0] = 0.0  # an all-black sample
    out = Augment(color=0.9)(x)
    assert out.shape == x.shape
    assert (out >= 0).all()
    top = x.amax(dim=(1, 2, 3))
    assert (out.amax(dim=(1, 2, 3)) <= top + 1e-4).all()
    assert torch.equal(out[0], x[0])
    assert not torch.allclose(out[1:], x[1:])


def test_color_changes_a_grayscale_batch() -> None:
    x = _images(16, 1, 6, 6) * 0.5  # room above for brightening is capped by the sample maximum anyway
    out = Augment(color=0.4)(x)
    assert out.shape == (16, 1, 6, 6)
    changed = [not torch.allclose(out[i], x[i]) for i in range(16)]
    assert sum(changed) >= 12


@pytest.mark.parametrize("kwargs", [{"shift": 0.5}, {"shift": -0.1}, {"rotate": 180.5}, {"rotate": -1.0},
                                    {"color": 1.0}, {"color": -0.2}])
def test_invalid_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="Augment needs"):
        Augment(**kwargs)


def test_boundary_arguments_are_accepted() -> None:
    aug = Augment(shift=0.49, rotate=180.0, color=0.99)
    assert (aug.shift, aug.rotate, aug.color) == (0.49, 180.0, 0.99)


def test_augmentation_from_arch() -> None:
    assert AUGMENT_KEYS == ("aug_flip", "aug_shift", "aug_rotate", "aug_color")
    assert augmentation_from_arch({}) is None
    assert augmentation_from_arch({"n_stages": 2, "channels_0": 8}) is None
    assert augmentation_from_arch({"aug_flip": False, "aug_shift": 0.0, "aug_rotate": 0.0, "aug_color": 0.0}) is None
    aug = augmentation_from_arch({"aug_flip": True})
    assert isinstance(aug, Augment)
    assert (aug.flip, aug.shift, aug.rotate, aug.color) == (True, 0.0, 0.0, 0.0)
    aug = augmentation_from_arch({"aug_flip": False, "aug_shift": 0.125, "aug_rotate": 10.0, "aug_color": 0.2})
    assert isinstance(aug, Augment)
    assert (aug.flip, aug.shift, aug.rotate, aug.color) == (False, 0.125, 10.0, 0.2)
    with pytest.raises(ValueError):
        augmentation_from_arch({"aug_shift": 0.7})


def test_a_half_pixel_shift_rounds_up_to_one_pixel() -> None:
    torch.manual_seed(0)
    x = torch.rand(32, 1, 8, 8) + 1.0
    out = Augment(shift=0.0625)(x)
    assert not torch.equal(out, x)  # 0.0625 of 8 px is half a pixel: one pixel, not none
    assert (out == 0).any()


def test_rotation_of_a_non_square_image_is_rigid() -> None:
    x = torch.zeros(1, 1, 9, 17)
    x[0, 0, 4, 2:15] = 1.0  # a horizontal bar through the centre
    torch.manual_seed(0)
    aug = Augment(rotate=90.0)
    angle_free = aug._rotate(x)
    assert angle_free.shape == x.shape
    # the rotated bar keeps its mass near the centre instead of being stretched off the image
    assert float(angle_free.sum()) > 0.25 * float(x.sum())
