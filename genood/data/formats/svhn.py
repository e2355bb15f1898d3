"""SVHN cropped digits (Netzer et al. 2011, http://ufldl.stanford.edu/housenumbers/).

``{train,test,extra}_32x32.mat`` are MATLAB v5 files with ``X``: uint8 ``(32, 32, 3, N)`` and
``y``: ``(N, 1)`` labels 1..10, where 10 stands for the digit 0. We return ``(N, 3, 32, 32)``
images and labels 0..9 (the digit itself), as torchvision and tensorflow-datasets do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and digit labels ``(N,)`` int64 from a ``*_32x32.mat``."""
    import scipy.io  # deferred: scipy is slow to import

    path = Path(path)
    try:
        contents = scipy.io.loadmat(path, variable_names=("X", "y"))
    except NotImplementedError as error:  # MATLAB v7.3 (HDF5) files
        raise DataFormatError(f"{path}: {error}; expected a MATLAB v5 .mat file") from error
    except (ValueError, TypeError, OSError, EOFError, IndexError) as error:
        raise DataFormatError(
            f"{path} is not a readable MATLAB .mat file ({error}); truncated or corrupt?"
        ) from error
    missing = [key for key in ("X", "y") if key not in contents]
    if missing:
        found = sorted(name for name, _, _ in scipy.io.whosmat(path))
        raise DataFormatError(
            f"{path}: no variable(s) {missing}; an SVHN *_32x32.mat holds X (32, 32, 3, N) and "
            f"y (N, 1), this file holds {found}"
        )
    pixels, digits = contents["X"], np.asarray(contents["y"]).reshape(-1)
    if pixels.ndim != 4 or pixels.shape[:3] != (32, 32, 3) or pixels.dtype != np.uint8:
        raise DataFormatError(
            f"{path}: X must be uint8 of shape (32, 32, 3, N), found {pixels.dtype} {pixels.shape}"
        )
    if len(digits) != pixels.shape[3]:
        raise DataFormatError(
            f"{path}: {pixels.shape[3]} images in X but {len(digits)} labels in y"
        )
    if digits.size and (digits.min() < 1 or digits.max() > 10):
        raise DataFormatError(
            f"{path}: labels must lie in 1..10, found {digits.min()}..{digits.max()}"
        )
    images = np.ascontiguousarray(pixels.transpose(3, 2, 0, 1))
    return images, (digits.astype(np.int64) % 10)


def write_svhn_mat(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write ``(N, 3, 32, 32)`` images and digit labels in the official layout (for tests)."""
    import scipy.io

    digits = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
    scipy.io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": digits}, do_compression=False)
