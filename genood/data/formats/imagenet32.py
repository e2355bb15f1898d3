"""Downsampled ImageNet 32x32 (Chrabaszcz, Loshchilov and Hutter 2017), as used by Nalisnick et al.

The official release (https://image-net.org/download-images.php, login required) is two zips,
``Imagenet32_train.zip`` with pickled batches ``train_data_batch_1..10`` and ``Imagenet32_val.zip``
with ``val_data``. Each batch is a dict ``{data: (N, 3072) uint8 (R, G, B planes),
labels: [1..1000], mean: ...}``; labels are 1-based and we return them 0-based. Batches are read
through the restricted unpickler; the zips may also be unpacked into a folder.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError
from genood.data.formats.safe_pickle import batch_dict, safe_loads

ZIPS = {"train": "Imagenet32_train.zip", "valid": "Imagenet32_val.zip"}
BATCHES = {"train": [f"train_data_batch_{i}" for i in range(1, 11)], "valid": ["val_data"]}


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as ``(N, 3, 32, 32)`` uint8 images and 0-based int64 labels."""
    batch = batch_dict(safe_loads(data, where), where, ("data", "labels"))
    pixels = np.asarray(batch["data"])
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise DataFormatError(
            f"{where}: 'data' must be uint8 of shape (N, 3072), found {pixels.dtype} {pixels.shape}"
        )
    labels = np.asarray(batch["labels"]).reshape(-1)
    if len(labels) != len(pixels) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{where}: {len(pixels)} images but labels {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise DataFormatError(
            f"{where}: labels must lie in 1..1000 (1-based), found {labels.min()}..{labels.max()}"
        )
    return pixels.reshape(-1, 3, 32, 32), labels.astype(np.int64) - 1


def read_imagenet32(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split from the official zip or from the folder it unpacks to."""
    if split not in BATCHES:
        raise ValueError(f"imagenet32 has splits {list(BATCHES)}, not {split!r}")
    path = Path(path)
    blobs: list[tuple[str, bytes]] = []
    if path.is_dir():
        for name in BATCHES[split]:
            file = path / name
            if not file.is_file():
                raise DataFormatError(f"{path}: missing {name}; expected {BATCHES[split]}")
            blobs.append((str(file), file.read_bytes()))
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                members = {Path(m).name: m for m in archive.namelist() if not m.endswith("/")}
                for name in BATCHES[split]:
                    if name not in members:
                        raise DataFormatError(
                            f"{path}: the zip has no {name}; expected {BATCHES[split]}"
                        )
                    blobs.append((f"{path}:{members[name]}", archive.read(members[name])))
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise DataFormatError(f"{path} is a truncated or corrupt zip file ({error})") from error
    parts = [parse_batch(data, where) for where, data in blobs]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
