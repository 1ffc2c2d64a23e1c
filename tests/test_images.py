"""Folders of image files as data sets, and image files as prediction input (Pillow only, no torch)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autoarch.exceptions import ConfigError, DataError
from autoarch.images import list_images, load_image_folder, read_images

SIZE = 12
CORNERS = [(0, 0), (0, 6), (6, 0), (6, 6)]  # (row, col) of a 6x6 bright square, one corner per class


def _pixels(k: int, i: int, size: int = SIZE) -> np.ndarray:
    """A dark image with a bright square in corner ``k``; ``i`` varies the background a little."""
    arr = np.full((size, size), 10 + i, dtype=np.uint8)
    r, c = CORNERS[k]
    arr[r:r + 6, c:c + 6] = 250
    return arr


def _make_folder(root: Path, classes: tuple[str, ...] = ("a", "b", "c"), n: int = 6, mode: str = "L",
                 suffix: str = ".png") -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = Image.fromarray(_pixels(k, i), mode="L")
            if mode == "RGB":  # the square is red: channel 0 bright, the others dark
                arr = np.stack([_pixels(k, i), np.full((SIZE, SIZE), 10 + i, np.uint8),
                                np.full((SIZE, SIZE), 10 + i, np.uint8)], axis=-1)
                img = Image.fromarray(arr, mode="RGB")
            img.save(root / name / f"{i:02d}{suffix}")
    return root


def test_classes_are_sorted_sub_folders_with_raw_pixels(tmp_path) -> None:
    root = _make_folder(tmp_path / "shapes", classes=("zeta", "alpha", "mid"))
    data = load_image_folder(root)
    assert data.classes == ["alpha", "mid", "zeta"]
    assert data.name == "shapes" and data.task == "classification" and data.input_kind == "image"
    assert data.X.dtype == np.uint8 and data.X.shape == (18, 1, SIZE, SIZE)  # 8-bit pixels: 4x less than float32
    assert data.y.dtype == np.int64 and list(data.y) == [0] * 6 + [1] * 6 + [2] * 6
    assert data.X.max() == 250.0 and data.X.min() == 10.0  # raw 0..255, not scaled
    # "zeta" was drawn first (corner 0), "alpha" second (corner 1): the labels follow the folders.
    np.testing.assert_array_equal(data.X[data.y == 2][0, 0], _pixels(0, 0))
    np.testing.assert_array_equal(data.X[data.y == 0][3, 0], _pixels(1, 3))
    assert load_image_folder(root, name="custom").name == "custom"


def test_rgb_gives_three_channels_and_mixed_folders_become_rgb(tmp_path) -> None:
    rgb = load_image_folder(_make_folder(tmp_path / "rgb", mode="RGB"))
    assert rgb.X.shape == (18, 3, SIZE, SIZE) and rgb.X.dtype == np.uint8
    np.testing.assert_array_equal(rgb.X[0, 0], _pixels(0, 0))
    assert rgb.X[0, 1].max() == 10.0 and rgb.X[0, 2].max() == 10.0
    mixed = _make_folder(tmp_path / "mixed", mode="L")
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8) + np.array([200, 0, 0], np.uint8)).save(mixed / "b" / "z.png")
    data = load_image_folder(mixed)
    assert data.X.shape == (19, 3, SIZE, SIZE)
    gray = data.X[0]  # a/00.png, grayscale: copied to the 3 channels
    np.testing.assert_array_equal(gray[0], _pixels(0, 0))
    np.testing.assert_array_equal(gray[0], gray[1])
    np.testing.assert_array_equal(gray[0], gray[2])
    red = data.X[12]  # b/z.png, after b/00..05
    assert red[0].min() == 200.0 and red[1].max() == 0.0


def test_palette_alpha_sixteen_bit_and_jpeg(tmp_path) -> None:
    root = _make_folder(tmp_path / "modes", classes=("a", "b"), n=2)
    Image.fromarray(_pixels(0, 0), mode="L").convert("P").save(root / "a" / "p.png")  # a palette of grays: still L
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent black
    rgba[:6, :6] = [0, 0, 0, 255]  # an opaque black square
    Image.fromarray(rgba, mode="RGBA").convert("LA").save(root / "a" / "la.png")
    Image.fromarray(np.full((SIZE, SIZE), 65535, np.uint16)).save(root / "b" / "16.png")
    Image.fromarray(_pixels(1, 0), mode="L").save(root / "b" / "j.jpg", quality=95)
    data = load_image_folder(root)
    assert data.X.shape == (8, 1, SIZE, SIZE)
    files = ["00.png", "01.png", "la.png", "p.png", "00.png", "01.png", "16.png", "j.jpg"]
    assert len(files) == len(data)
    np.testing.assert_array_equal(data.X[3, 0], _pixels(0, 0))  # the palette image
    la = data.X[2, 0]
    assert (la[:6, :6] == 0).all() and (la[6:, :] == 255).all()  # transparent pixels are composited on white
    assert (data.X[6] == 255).all()  # 16-bit 65535 is 255
    assert np.abs(data.X[7, 0].astype(int) - _pixels(1, 0)).max() < 12  # JPEG is lossy but close (uint8: no wrap)
    # Colour, from an RGBA image with a transparent part: three channels, white where transparent.
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[:6, :6] = [255, 0, 0, 255]
    Image.fromarray(rgba, mode="RGBA").save(root / "b" / "rgba.png")
    data = load_image_folder(root)
    assert data.X.shape == (9, 3, SIZE, SIZE)
    px = data.X[8]  # b/rgba.png sorts after b/j.jpg
    assert list(px[:, 0, 0]) == [255, 0, 0] and list(px[:, 11, 11]) == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path) -> None:
    root = _make_folder(tmp_path / "exif", classes=("a", "b"), n=2, suffix=".jpg")
    arr = np.zeros((SIZE, 20), np.uint8)  # 12 rows x 20 columns, stored sideways
    arr[:, :4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(arr, mode="L").save(root / "a" / "turned.jpg", exif=exif, quality=95)
    with pytest.raises(DataError, match="different sizes"):
        load_image_folder(root)  # upright it is 20x12, unlike the 12x12 others
    data = load_image_folder(root, image_size=(20, SIZE))
    turned = data.X[2, 0]  # a/00.jpg, a/01.jpg, a/turned.jpg
    assert turned.shape == (20, SIZE)
    assert turned[:4].mean() > 200 and turned[8:].mean() < 30  # the bright left columns are now the top rows


def test_image_size_resizes_and_mixed_sizes_are_refused_without_it(tmp_path) -> None:
    root = _make_folder(tmp_path / "sizes")
    Image.fromarray(np.full((32, 40), 100, np.uint8)).save(root / "b" / "big.png")
    with pytest.raises(DataError, match="--image-size") as err:
        load_image_folder(root)
    message = str(err.value)
    assert "\n" not in message and "12x12 in a/00.png" in message and "32x40 in b/big.png" in message
    data = load_image_folder(root, image_size=8)
    assert data.X.shape == (19, 1, 8, 8)
    np.testing.assert_allclose(data.X[12], 100.0)  # a uniform image stays uniform after bilinear resizing
    assert load_image_folder(root, image_size=(6, 10)).X.shape == (19, 1, 6, 10)
    with pytest.raises(ConfigError, match="image_size"):
        load_image_folder(root, image_size=0)
    with pytest.raises(ConfigError, match="image_size"):
        load_image_folder(root, image_size=(8, 8, 3))


def test_bad_images_fail_or_are_skipped_with_a_warning(tmp_path, caplog) -> None:
    root = _make_folder(tmp_path / "bad")
    (root / "b" / "x.png").write_bytes(b"not an image")
    (root / "b" / ".DS_Store").write_bytes(b"\0\0")  # hidden: ignored silently
    with pytest.raises(DataError, match="--on-bad-image skip") as err:
        load_image_folder(root)
    assert str(root / "b" / "x.png") in str(err.value) and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="autoarch.images"):
        data = load_image_folder(root, on_bad_image="skip")
    assert len(data) == 18 and list(np.bincount(data.y)) == [6, 6, 6]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 1 bad file" in warnings[0] and "x.png" in warnings[0]
    # A file that is not an image by its suffix is a bad image too.
    (root / "b" / "x.png").unlink()
    (root / "c" / "README.txt").write_text("notes")
    with pytest.raises(DataError, match=r"README\.txt: not an image file"):
        load_image_folder(root)
    assert len(load_image_folder(root, on_bad_image="skip")) == 18
    with pytest.raises(ConfigError, match="Did you mean 'skip'"):
        load_image_folder(root, on_bad_image="skp")


def test_a_class_of_bad_files_only_is_an_error_even_when_skipping(tmp_path) -> None:
    root = _make_folder(tmp_path / "allbad")
    for f in (root / "c").iterdir():
        f.write_bytes(b"junk")
    with pytest.raises(DataError, match="'c' has no readable images"):
        load_image_folder(root, on_bad_image="skip")


def test_bad_folder_layouts_raise_one_clear_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is not a folder"):
        load_image_folder(tmp_path / "file.png")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(_pixels(0, i)).save(flat / f"{i}.png")
    with pytest.raises(DataError, match="put each class's images in a sub-folder named after the class"):
        load_image_folder(flat)
    empty = _make_folder(tmp_path / "empty")
    (empty / "d").mkdir()
    (empty / "d" / ".hidden").write_text("")
    with pytest.raises(DataError, match="class folder 'd' has no images"):
        load_image_folder(empty)
    one = _make_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match=r"only one class sub-folder \('only'\)"):
        load_image_folder(one)


def test_loose_images_next_to_class_folders_are_ignored_with_a_warning(tmp_path, caplog) -> None:
    root = _make_folder(tmp_path / "loose")
    Image.fromarray(_pixels(0, 0)).save(root / "stray.png")
    (root / "README.md").write_text("about")
    with caplog.at_level(logging.WARNING, logger="autoarch.images"):
        data = load_image_folder(root)
    assert len(data) == 18
    assert any("stray.png" in r.getMessage() for r in caplog.records)


def test_given_classes_fix_the_label_order_and_must_match(tmp_path) -> None:
    root = _make_folder(tmp_path / "test")
    data = load_image_folder(root, classes=["c", "a", "b"])
    assert data.classes == ["c", "a", "b"]
    assert list(data.y) == [0] * 6 + [1] * 6 + [2] * 6  # c/ first, then a/, b/
    np.testing.assert_array_equal(data.X[0, 0], _pixels(2, 0))  # c's images were drawn with corner 2
    with pytest.raises(DataError) as err:
        load_image_folder(root, classes=["a", "b", "d"])
    message = str(err.value)
    assert "['c']" in message and "['d']" in message and "\n" not in message


def test_a_test_folder_is_uint8_and_matched_to_the_training_channels(tmp_path) -> None:
    from autoarch.loaders import load_dataset, load_test

    gray = load_dataset(str(_make_folder(tmp_path / "gray")))
    rgb = load_dataset(str(_make_folder(tmp_path / "rgb", mode="RGB")))
    assert gray.X.dtype == np.uint8 and rgb.X.dtype == np.uint8
    same = load_test(str(tmp_path / "gray"), gray)
    assert same.X.dtype == np.uint8 and np.array_equal(same.X, gray.X)
    repeated = load_test(str(tmp_path / "gray"), rgb)  # gray for an RGB model: the channel repeated, still uint8
    assert repeated.X.dtype == np.uint8 and repeated.input_shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(repeated.X[:, 2], gray.X[:, 0])
    averaged = load_test(str(tmp_path / "rgb"), gray)  # RGB for a gray model: the channels' mean, fractional
    assert averaged.X.dtype == np.float32 and averaged.input_shape == (1, SIZE, SIZE)
    np.testing.assert_array_equal(averaged.X, rgb.X.astype(np.float32).mean(axis=1, keepdims=True))


def test_read_images_converts_and_resizes_to_the_model_input(tmp_path) -> None:
    Image.fromarray(np.zeros((16, 20, 3), np.uint8) + np.array([255, 0, 0], np.uint8)).save(tmp_path / "red.png")
    Image.fromarray(np.full((SIZE, SIZE), 90, np.uint8)).save(tmp_path / "gray.bmp")
    files = [tmp_path / "red.png", tmp_path / "gray.bmp"]
    gray = read_images(files, (1, SIZE, SIZE))
    assert gray.dtype == np.float32 and gray.shape == (2, 1, SIZE, SIZE)
    np.testing.assert_allclose(gray[0], 76.0)  # L = 0.299 R + 0.587 G + 0.114 B of pure red
    np.testing.assert_allclose(gray[1], 90.0)
    rgb = read_images(files, (3, 8, 10))
    assert rgb.shape == (2, 3, 8, 10)
    np.testing.assert_allclose(rgb[0, 0], 255.0)
    np.testing.assert_allclose(rgb[0, 1:], 0.0)
    np.testing.assert_allclose(rgb[1], 90.0)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.jpg: not a readable image"):
        read_images([tmp_path / "broken.jpg"], (1, SIZE, SIZE))
    with pytest.raises(DataError, match="images give"):
        read_images(files, (4, SIZE, SIZE))


def test_list_images_of_a_file_or_a_folder(tmp_path) -> None:
    root = _make_folder(tmp_path / "pred", classes=("b", "a"), n=2)
    Image.fromarray(_pixels(0, 0)).save(root / "top.jpg")
    (root / "notes.txt").write_text("x")
    (root / ".hidden.png").write_bytes(b"x")
    got = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert got == ["a/00.png", "a/01.png", "b/00.png", "b/01.png", "top.jpg"]
    assert list_images(root / "top.jpg") == [root / "top.jpg"]
    with pytest.raises(DataError, match="is not an image file"):
        list_images(root / "notes.txt")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no image files"):
        list_images(tmp_path / "none")
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nowhere")
