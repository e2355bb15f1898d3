"""Arrays a user already has: ``.npz`` files with ``images`` (and optionally ``labels``).

``images`` is uint8 in one of three layouts: ``(N, C, H, W)`` (ours), ``(N, H, W, C)`` (numpy,
TensorFlow) or ``(N, H, W)`` (grayscale); C must be 1 or 3, and N at least 1. ``labels`` is
integer ``(N,)`` with class indices ``0 .. K-1``, where ``K <= max(N, MAX_CLASSES)`` (a label of
10^9 would make a histogram or a classifier's output layer exhaust memory); negative labels are
refused (leave ``labels`` out for an unlabeled set). Pickled object arrays are refused
(``allow_pickle=False``), and so is an array larger than half the machine's memory, from its
``.npy`` header, before it is read (a compressed ``.npz`` can expand a thousandfold).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from genood.data.errors import DataFormatError
from genood.data.imageset import require_memory

# The class count any set may have, whatever its size (ImageNet has 1,000, CIFAR-100 100).
MAX_CLASSES = 10_000


def to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """Bring ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` uint8 images to NCHW."""
    if images.dtype != np.uint8:
        raise DataFormatError(
            f"{where}: images must be uint8 (0..255), found {images.dtype}; convert them first, "
            "e.g. np.rint(x * 255).astype(np.uint8) for floats in [0, 1]"
        )
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[1] in (1, 3):
            return images
        if images.shape[3] in (1, 3):
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    raise DataFormatError(
        f"{where}: images of shape {images.shape} are none of (N, C, H, W), (N, H, W, C) or "
        "(N, H, W) with C = 1 or 3"
    )


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64 (-1 when the file has none)."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(
            f"{path} is a folder; npz:PATH needs a .npz file (for a folder of images use "
            f"imagefolder:{path})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (npz:PATH needs a .npz file)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise DataFormatError(
            f"{path} is not a readable .npz file (an .npz is a zip of .npy arrays, as np.savez "
            f"writes; this file starts with {magic!r})"
        )
    try:
        with np.load(path, allow_pickle=False) as contents:
            if "images" not in contents.files:
                raise DataFormatError(
                    f"{path}: no 'images' array; expected keys 'images' and optionally 'labels', "
                    f"found {contents.files}"
                )
            for key in ("images", "labels"):
                if key in contents.files:
                    _check_size(contents, key, path)
            images = contents["images"]
            labels = contents["labels"] if "labels" in contents.files else None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise DataFormatError(f"{path} is not a readable .npz file ({error})") from error
    except ValueError as error:
        if isinstance(error, DataFormatError):
            raise
        raise DataFormatError(f"{path}: {error} (object arrays are refused)") from error
    images = to_nchw(images, str(path))
    if len(images) == 0:
        raise DataFormatError(f"{path}: 'images' holds no images (shape {images.shape})")
    if labels is None:
        return images, np.full(len(images), -1, np.int64)
    return images, check_labels(labels, len(images), str(path))


def check_labels(labels: np.ndarray, count: int, where: str) -> np.ndarray:
    """``labels`` as int64 after checking: integers, shape ``(count,)``, 0 .. K-1, K sane.

    Raises:
        DataFormatError: naming ``where``, what was found and how to fix it.
    """
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{where}: labels must be integers of shape ({count},), found {labels.dtype} "
            f"{labels.shape}"
        )
    if labels.size == 0:
        return labels.astype(np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        index = int(np.argmax(labels < 0))
        raise DataFormatError(
            f"{where}: labels must be class indices >= 0, found {low} (label {index}); leave "
            "the 'labels' array out for an unlabeled set"
        )
    limit = max(count, MAX_CLASSES)
    if high >= limit:
        raise DataFormatError(
            f"{where}: labels go up to {high}, i.e. {high + 1} classes for {count} images (at "
            f"most {limit}); number the classes 0..K-1, e.g. labels = np.unique(labels, "
            "return_inverse=True)[1]"
        )
    return labels.astype(np.int64)


def _check_size(contents: Any, key: str, path: Path) -> None:
    """Refuse an array that would not fit in memory, from its header, before reading it."""
    fmt = np.lib.format
    try:
        with contents.zip.open(f"{key}.npy") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                return  # np.load reads and checks other versions itself
    except KeyError:
        return
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    require_memory(nbytes, f"{path}: the {key!r} array {tuple(shape)} {dtype}")
