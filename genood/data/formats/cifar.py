"""CIFAR-10 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html).

Two official releases hold the same 50,000 training and 10,000 test images:

* the binary release ``cifar-10-binary.tar.gz``: ``cifar-10-batches-bin/data_batch_{1..5}.bin``
  and ``test_batch.bin``, each 10,000 records of 1 label byte + 3,072 pixel bytes (1,024 red,
  then green, then blue, rows in order); no pickle, so it is our download of choice;
* the python release ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/data_batch_{1..5}`` and
  ``test_batch``, pickled dicts ``{data: (10000, 3072) uint8, labels: [int]}``, read through the
  restricted unpickler.

Either may be given as the tarball or as the folder it unpacks to.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError
from genood.data.formats.safe_pickle import batch_dict, safe_loads

RECORD_BYTES = 1 + 3 * 32 * 32
BATCH_SIZE = 10_000
BINARY_DIR = "cifar-10-batches-bin"
PYTHON_DIR = "cifar-10-batches-py"
SPLIT_FILES = {
    "binary": {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]},
    "python": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _members(path: Path, folder: str, names: list[str]) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of the wanted batch files, from a tarball or an unpacked folder."""
    path = Path(path)
    if path.is_dir():
        root = path / folder if (path / folder).is_dir() else path
        for name in names:
            file = root / name
            if not file.is_file():
                raise DataFormatError(f"{root}: missing {name}; expected {names}")
            yield str(file), file.read_bytes()
        return
    wanted = {f"{folder}/{name}": name for name in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                key = member.name.removeprefix("./")
                if key in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    found[wanted[key]] = handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataFormatError(
            f"{path} is a truncated or corrupt tar archive ({error}); delete it and fetch it again"
        ) from error
    missing = [name for name in names if name not in found]
    if missing:
        raise DataFormatError(f"{path}: the archive has no {folder}/{missing[0]}; expected {names}")
    for name in names:
        yield f"{path}:{folder}/{name}", found[name]


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFormatError(
            f"{where}: labels must lie in 0..9, found {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def read_cifar_binary(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` of one split of the binary release."""
    images, labels = [], []
    for where, data in _members(path, BINARY_DIR, _split_files("binary", split)):
        if not data or len(data) % RECORD_BYTES:
            raise DataFormatError(
                f"{where}: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records "
                f"(1 label byte + 3x32x32 pixels; the official batches hold {BATCH_SIZE} each); "
                "truncated?"
            )
        records = np.frombuffer(data, np.uint8).reshape(-1, RECORD_BYTES)
        labels.append(_check_labels(records[:, 0], where))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar_python(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of the python (pickled) release, unpickled safely."""
    images, labels = [], []
    for where, data in _members(path, PYTHON_DIR, _split_files("python", split)):
        batch = batch_dict(safe_loads(data, where), where, ("data", "labels"))
        pixels = np.asarray(batch["data"])
        if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
            raise DataFormatError(
                f"{where}: 'data' must be uint8 of shape (N, 3072), found {pixels.dtype} "
                f"{pixels.shape}"
            )
        batch_labels = np.asarray(batch["labels"])
        if batch_labels.shape != (len(pixels),):
            raise DataFormatError(f"{where}: {len(pixels)} images but {batch_labels.size} labels")
        labels.append(_check_labels(batch_labels, where))
        images.append(pixels.reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def _split_files(release: str, split: str) -> list[str]:
    if split not in SPLIT_FILES[release]:
        raise ValueError(f"CIFAR-10 has splits {sorted(SPLIT_FILES[release])}, not {split!r}")
    return SPLIT_FILES[release][split]


def write_cifar_binary_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write records in the binary release's layout (for tests and tools)."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    records = np.concatenate([labels.astype(np.uint8)[:, None], flat], axis=1)
    Path(path).write_bytes(records.tobytes())
