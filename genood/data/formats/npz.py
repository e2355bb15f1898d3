"""Arrays a user already has: ``.npz`` files with ``images`` (and optionally ``labels``).

``images`` is uint8 in one of three layouts: ``(N, C, H, W)`` (ours), ``(N, H, W, C)`` (numpy,
TensorFlow) or ``(N, H, W)`` (grayscale); C must be 1 or 3. ``labels`` is integer ``(N,)``.
Pickled object arrays are refused (``allow_pickle=False``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError


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
            images = contents["images"]
            labels = contents["labels"] if "labels" in contents.files else None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise DataFormatError(f"{path} is not a readable .npz file ({error})") from error
    except ValueError as error:
        if isinstance(error, DataFormatError):
            raise
        raise DataFormatError(f"{path}: {error} (object arrays are refused)") from error
    images = to_nchw(images, str(path))
    if labels is None:
        return images, np.full(len(images), -1, np.int64)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{path}: labels must be integers of shape ({len(images)},), found {labels.dtype} "
            f"{labels.shape}"
        )
    return images, labels.astype(np.int64)
