"""Folders of image files as a :class:`~autoarch.data.Dataset`, and image files as model input (Pillow only).

A training folder has one sub-folder per class, named after the class::

    pets/
        cat/  001.jpg  002.png ...
        dog/  a.jpg  b/c.jpg ...        (images further down a class folder belong to that class)

The rules:

* **Classes** are the immediate sub-folders of the folder, sorted by name; a test folder given ``classes`` (the
  training set's labels) must have exactly those sub-folders, and its labels follow that order.
* **Pixels** are raw values 0..255 as ``uint8`` of shape ``(n, C, H, W)`` (4x less memory than ``float32``; the
  trainer converts each batch to ``float32``, exactly), not divided by 255: the model standardises its input
  itself. ``C`` is 1 when every image is grayscale (modes ``1``, ``L``, ``LA``, 16-bit
  ``I;16``/``I`` scaled to 0..255 by dividing by 257, ``F`` clipped to 0..255, or a palette image ``P`` whose colours
  are all gray), else 3: every image is converted to RGB, grayscale ones included, when any image has colour.
* **Transparency** (``RGBA``, ``LA``, ``PA``, or a palette/`transparency` entry) is composited on a white
  background, so transparent pixels become white rather than whatever colour they happen to store.
* **Orientation**: the EXIF orientation tag is applied (``ImageOps.exif_transpose``), so a photo taken upright is
  read upright.
* **Sizes**: with ``image_size`` every image is resized to it (bilinear). Without it all images must have the same
  size; mixed sizes are refused with a :class:`DataError` that says to give ``--image-size``.
* **Files**: hidden files and folders (names starting with ``.``), ``__MACOSX`` folders, ``Thumbs.db`` and
  ``desktop.ini`` are ignored silently. Any other file in a class folder whose suffix is not one of
  :data:`IMAGE_SUFFIXES`, or that Pillow cannot decode, is a *bad image*: ``on_bad_image="fail"`` stops with a
  :class:`DataError` naming the first one, ``"skip"`` leaves them out with one warning. Files directly in the
  top folder (next to the class sub-folders, e.g. a README) are not samples and are ignored (with a warning when
  they are images).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from autoarch import data as _data  # a module reference: autoarch.data may import this module in turn
from autoarch.exceptions import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    from autoarch.data import Dataset

__all__ = ["IMAGE_SUFFIXES", "load_image_folder", "read_images", "list_images"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
BAD_IMAGE_CHOICES = ("fail", "skip")
_JUNK_FILES = {"thumbs.db", "desktop.ini"}
_JUNK_DIRS = {"__macosx"}
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}  # plus every "I;16..." mode
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_WHITE = (255, 255, 255, 255)


def _suffixes() -> str:
    return ", ".join(IMAGE_SUFFIXES)


def _ignored(part: str) -> bool:
    return part.startswith(".") or part.lower() in _JUNK_FILES or part.lower() in _JUNK_DIRS


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder`` (recursively), minus ignored ones, sorted by relative path."""
    found = []
    for file in folder.rglob("*"):
        rel = file.relative_to(folder)
        if any(_ignored(part) for part in rel.parts) or not file.is_file():
            continue
        found.append(file)
    return sorted(found, key=lambda f: f.relative_to(folder).parts)


def _is_image_name(file: Path) -> bool:
    return file.suffix.lower() in IMAGE_SUFFIXES


def _parse_size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size: tuple[int, ...] = (int(image_size), int(image_size))
    elif (isinstance(image_size, Sequence) and not isinstance(image_size, str) and len(image_size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_size)):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ConfigError(f"image_size must be a positive int or (height, width), but got {image_size!r}; "
                          "give e.g. --image-size 32.")
    if min(size) < 1:
        raise ConfigError(f"image_size must be positive, but got {image_size!r}; give e.g. --image-size 32.")
    return size[0], size[1]


def _open(file: Path) -> Image.Image:
    """Decode ``file`` fully and apply its EXIF orientation."""
    with Image.open(file) as img:
        img.load()
        return ImageOps.exif_transpose(img)  # a new, loaded image (a copy when nothing is to turn)


def _normalise(img: Image.Image) -> tuple[Image.Image, bool]:
    """``(image in mode L or RGB, is_gray)``: alpha composited on white, 16-bit and float gray scaled to 0..255."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if mode != "F":
            values = values / 257.0  # 16-bit range 0..65535 to 0..255
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L"), True
    gray = mode in _GRAY_MODES
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    if gray:
        return img.convert("L"), True
    rgb = img.convert("RGB")
    if mode in ("P", "PA"):  # a palette of grays is a grayscale image
        arr = np.asarray(rgb)
        if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            return rgb.convert("L"), True
    return rgb, False


def _decode(file: Path, size: tuple[int, int] | None, channels: int | None = None) -> tuple[np.ndarray, bool]:
    """``(uint8 array (C, H, W), is_gray)`` of ``file``; ``channels`` forces 1 (L) or 3 (RGB).

    Raises:
        Exception: whatever Pillow raises for an unreadable file.
    """
    img, gray = _normalise(_open(file))
    if channels == 1 and not gray:
        img, gray = img.convert("L"), True
    elif channels == 3 and gray:
        img, gray = img.convert("RGB"), False
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return (arr[None] if gray else np.ascontiguousarray(arr.transpose(2, 0, 1))), gray


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return text or type(exc).__name__


def _class_folders(root: Path) -> list[Path]:
    if not root.exists():
        raise DataError(f"image folder {str(root)!r} does not exist; check the path.")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder with one sub-folder of images per class.")
    folders = sorted((d for d in root.iterdir() if d.is_dir() and not _ignored(d.name)), key=lambda d: d.name)
    loose = [f for f in root.iterdir() if f.is_file() and not _ignored(f.name) and _is_image_name(f)]
    if not folders:
        if loose:
            raise DataError(f"{root}: the images lie directly in the folder ({len(loose)} of them), but their class "
                            "is not known; put each class's images in a sub-folder named after the class.")
        raise DataError(f"{root}: no class sub-folders; put each class's images in a sub-folder named after the "
                        "class.")
    if loose:
        logger.warning("%s: ignored %d image file(s) directly in the folder (the first: %s); only the images in "
                       "class sub-folders are samples.", root, len(loose), sorted(loose)[0].name)
    return folders


def _match_classes(root: Path, folders: list[Path], classes: Sequence[Any]) -> list[Path]:
    """The class folders in the order of ``classes`` (compared as text), or a DataError naming the difference."""
    by_name = {d.name: d for d in folders}
    wanted = [str(c) for c in classes]
    extra = sorted(set(by_name) - set(wanted))
    missing = [c for c in wanted if c not in by_name]
    if extra or missing:
        parts = ([f"the sub-folders {extra} are not among them"] if extra else []) + \
                ([f"the classes {missing} have no sub-folder"] if missing else [])
        raise DataError(f"{root}: the class sub-folders differ from the given classes {wanted}: "
                        f"{'; '.join(parts)}; a test folder needs one sub-folder per training class, named alike.")
    return [by_name[c] for c in wanted]


def load_image_folder(path: str | os.PathLike[str], image_size: int | Sequence[int] | None = None,
                      on_bad_image: str = "fail", classes: Sequence[Any] | None = None,
                      name: str | None = None) -> Dataset:
    """Load a folder with one sub-folder of images per class as a classification :class:`Dataset`.

    See the module docstring for the rules (classes, channels, transparency, sizes, which files count).

    Args:
        path: the folder; each immediate sub-folder is a class, named after it.
        image_size: resize every image to this size: an int (square) or ``(height, width)``. When None all
            images must have the same size.
        on_bad_image: ``"fail"`` (a bad file stops with a DataError) or ``"skip"`` (bad files are left out, with
            one warning that counts them).
        classes: the classes in training order, for a test folder: its sub-folders must be exactly these, and the
            labels are indices in this order. When None the sorted sub-folder names are the classes.
        name: the data set's name for reports; the folder's name when None.

    Returns:
        A Dataset with ``X`` uint8 ``(n, C, H, W)`` of raw pixel values 0..255 and ``y`` class indices.

    Raises:
        DataError: not a folder, no class sub-folders, an empty class, one class only, a bad image (with
            ``"fail"``), mixed sizes without ``image_size``, sub-folders that differ from ``classes``.
        ConfigError: an invalid ``image_size`` or ``on_bad_image``.
    """
    if on_bad_image not in BAD_IMAGE_CHOICES:
        raise ConfigError(f"on_bad_image must be one of {BAD_IMAGE_CHOICES}, but got {on_bad_image!r}."
                          f"{did_you_mean(on_bad_image, BAD_IMAGE_CHOICES)}")
    size = _parse_size(image_size)
    root = Path(path)
    folders = _class_folders(root)
    if classes is not None:
        folders = _match_classes(root, folders, classes)
        labels = list(classes)
    else:
        labels = [d.name for d in folders]
    if len(folders) < 2:
        raise DataError(f"{root}: only one class sub-folder ({folders[0].name!r}); classification needs at least 2, "
                        "one sub-folder of images per class.")

    arrays: list[np.ndarray] = []
    y: list[int] = []
    all_gray = True
    bad: list[tuple[Path, str]] = []
    first: tuple[Path, tuple[int, int]] | None = None  # the first image and its size, when not resizing
    for index, folder in enumerate(folders):
        files = _files_under(folder)
        if not files:
            raise DataError(f"{root}: the class folder {folder.name!r} has no images; add images to it or remove it.")
        n_before = len(arrays)
        for file in files:
            if not _is_image_name(file):
                problem = f"not an image file (suffix {file.suffix!r}; autoarch reads {_suffixes()})"
            else:
                try:
                    arr, gray = _decode(file, size)
                except Exception as exc:  # Pillow raises many types (OSError, ValueError, SyntaxError, ...)
                    problem = f"not a readable image ({_reason(exc)})"
                else:
                    problem = ""
            if problem:
                if on_bad_image == "fail":
                    raise DataError(f"{file}: {problem}; remove or replace it, or give --on-bad-image skip to leave "
                                    "bad files out.")
                bad.append((file, problem))
                continue
            hw = (int(arr.shape[1]), int(arr.shape[2]))
            if first is None:
                first = (file, hw)
            elif size is None and hw != first[1]:
                a, b = first[0].relative_to(root).as_posix(), file.relative_to(root).as_posix()
                raise DataError(f"{root}: images have different sizes (height x width: {first[1][0]}x{first[1][1]} "
                                f"in {a}, {hw[0]}x{hw[1]} in {b}); give --image-size N to resize them.")
            arrays.append(arr)
            y.append(index)
            all_gray = all_gray and gray
        if len(arrays) == n_before:
            raise DataError(f"{root}: the class folder {folder.name!r} has no readable images (all {len(files)} "
                            "were skipped); add images to it or remove it.")
    if bad:
        logger.warning("%s: skipped %d bad file(s) (the first: %s: %s).", root, len(bad), bad[0][0], bad[0][1])

    height, width = arrays[0].shape[1:]
    X = np.empty((len(arrays), 1 if all_gray else 3, height, width), dtype=np.uint8)
    for i, arr in enumerate(arrays):
        X[i] = arr  # a gray (1, H, W) image is broadcast to the 3 RGB channels when others have colour
    del arrays
    return _data.from_arrays(X, np.asarray(y, dtype=np.int64), task=_data.CLASSIFICATION,
                       name=name or root.resolve().name or str(root), classes=labels)


def list_images(path: str | os.PathLike[str]) -> list[Path]:
    """The image files to predict: ``[path]`` for an image file; for a folder, the files with an image suffix
    anywhere below it (hidden ones ignored), sorted by relative path. Other files in a folder are ignored.

    Raises:
        DataError: the path does not exist, a file that is not an image, a folder without images.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {str(path)!r} does not exist; check the path.")
    if path.is_file():
        if not _is_image_name(path):
            raise DataError(f"{path} is not an image file (suffix {path.suffix!r}); give one of {_suffixes()} or a "
                            "folder of them.")
        return [path]
    files = [f for f in _files_under(path) if _is_image_name(f)]
    if not files:
        raise DataError(f"{path}: no image files ({_suffixes()}) in the folder; check the path.")
    return files


def read_images(paths: Sequence[str | os.PathLike[str]], input_shape: Sequence[int]) -> np.ndarray:
    """Decode image files for a model of ``input_shape`` ``(C, H, W)``: converted to L (C = 1) or RGB (C = 3),
    resized (bilinear) to ``(H, W)`` when different, as float32 ``(n, C, H, W)`` of raw values 0..255 (the ONNX
    model's input; a training :class:`~autoarch.data.Dataset` holds them as ``uint8``).

    Transparency and EXIF orientation are handled as in :func:`load_image_folder`.

    Raises:
        DataError: the model does not take 1- or 3-channel images, or a file cannot be decoded.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise DataError(f"the model takes input of shape {list(shape)}, but images give (1 or 3, H, W); give a .csv "
                        "or .npz file in the model's layout instead.")
    channels, size = shape[0], (shape[1], shape[2])
    X = np.empty((len(paths), *shape), dtype=np.float32)
    for i, file in enumerate(paths):
        try:
            X[i] = _decode(Path(file), size, channels=channels)[0]
        except Exception as exc:  # Pillow raises many types (OSError, ValueError, SyntaxError, ...)
            raise DataError(f"{file}: not a readable image ({_reason(exc)}); remove or replace it.") from None
    return X
