"""ImageNet32: the official zips of pickled batches (restricted unpickler) or an image folder."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from data_builders import sha256
from PIL import Image

from genood.data import load
from genood.data.catalog import IMAGENET32
from genood.data.errors import DataFormatError, UnsafePickleError
from genood.data.formats.imagenet32 import read_imagenet32


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "labels": [int(v) for v in rng.integers(1, 1001, n)],
        "mean": rng.random(3072),
    }


def _zip(path, batches):
    with zipfile.ZipFile(path, "w") as archive:
        for name, batch in batches.items():
            archive.writestr(name, pickle.dumps(batch))
    return path


def test_val_zip(tmp_path):
    batch = _batch(5, 0)
    images, labels = read_imagenet32(
        _zip(tmp_path / "Imagenet32_val.zip", {"val_data": batch}), "valid"
    )
    assert images.shape == (5, 3, 32, 32) and np.array_equal(images.reshape(5, -1), batch["data"])
    assert np.array_equal(labels, np.asarray(batch["labels"]) - 1)  # 1-based -> 0-based


def test_train_zip_has_ten_batches(tmp_path):
    batches = {f"train_data_batch_{i}": _batch(2, i) for i in range(1, 11)}
    images, labels = read_imagenet32(_zip(tmp_path / "Imagenet32_train.zip", batches), "train")
    assert images.shape == (20, 3, 32, 32) and labels.min() >= 0
    del batches["train_data_batch_7"]
    with pytest.raises(DataFormatError, match="the zip has no train_data_batch_7"):
        read_imagenet32(_zip(tmp_path / "short.zip", batches), "train")


def test_truncated_zip(tmp_path):
    path = _zip(tmp_path / "Imagenet32_val.zip", {"val_data": _batch(50, 0)})
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataFormatError, match=r"Imagenet32_val.zip is a truncated or corrupt zip"):
        read_imagenet32(path, "valid")


def test_bad_labels_and_code(tmp_path):
    batch = _batch(2, 0)
    batch["labels"] = [0, 5]
    with pytest.raises(DataFormatError, match=r"labels must lie in 1..1000 \(1-based\)"):
        read_imagenet32(_zip(tmp_path / "a.zip", {"val_data": batch}), "valid")

    class Evil:
        def __reduce__(self):
            return (exec, ("import os",))

    with pytest.raises(UnsafePickleError, match="refusing to unpickle builtins.exec"):
        read_imagenet32(_zip(tmp_path / "b.zip", {"val_data": {"data": Evil()}}), "valid")


def test_load_official_zip_and_image_folder(tmp_path, monkeypatch):
    folder = tmp_path / "imagenet32"
    folder.mkdir()
    _zip(folder / "Imagenet32_val.zip", {"val_data": _batch(4, 1)})
    monkeypatch.setitem(IMAGENET32.counts, "valid", 4)
    data = load("imagenet32:test", data_dir=tmp_path, progress=False)  # test is the valid split
    assert data.spec == "imagenet32:valid" and data.shape == (3, 32, 32)
    assert sha256(folder / "Imagenet32_val.zip")  # unverified: there is no published checksum

    (folder / "Imagenet32_val.zip").unlink()
    for cls in ("n01", "n02"):
        (folder / "val" / cls).mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(folder / "val" / cls / "a.png")
    data = load("imagenet32:valid", data_dir=tmp_path, progress=False)
    assert list(data.labels) == [0, 1] and data.source.startswith("--data-dir")


def test_image_folder_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / "imagenet32" / "val" / "n01").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "imagenet32/val/n01/a.png")
    expected = r"images must be uint8 of shape \(N, 3, 32, 32\)"
    with pytest.raises(FileNotFoundError, match=expected), pytest.warns(UserWarning):
        load("imagenet32:valid", data_dir=tmp_path, progress=False)
