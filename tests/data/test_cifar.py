"""CIFAR-10 readers on synthetic tarballs in the two official layouts, and through ``load``."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
from data_builders import (
    cifar_arrays,
    make_cifar_binary_tar,
    make_cifar_python_tar,
    sha256,
    truncate,
    trust,
)

from genood.data import DataNotFoundError, load
from genood.data.cache import CacheEntry
from genood.data.catalog import CIFAR10
from genood.data.errors import DataFormatError, UnsafePickleError
from genood.data.formats.cifar import read_cifar_binary, read_cifar_python


def _batches(per_batch: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: cifar_arrays(per_batch, seed) for seed, name in enumerate(names)}


def _expected(batches, split):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return np.concatenate([batches[n][0] for n in names]), np.concatenate(
        [batches[n][1] for n in names]
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_binary_release(tmp_path, split):
    batches = _batches()
    tarball = make_cifar_binary_tar(tmp_path / "cifar-10-binary.tar.gz", batches)
    images, labels = read_cifar_binary(tarball, split)
    want_images, want_labels = _expected(batches, split)
    assert images.dtype == np.uint8 and images.shape == (len(want_images), 3, 32, 32)
    assert np.array_equal(images, want_images) and np.array_equal(labels, want_labels)
    with tarfile.open(tarball) as tar:  # the same from the unpacked folder
        tar.extractall(tmp_path, filter="data")
    images, labels = read_cifar_binary(tmp_path / "cifar-10-batches-bin", split)
    assert np.array_equal(images, want_images) and np.array_equal(labels, want_labels)


@pytest.mark.parametrize("split", ["train", "test"])
def test_python_release(tmp_path, split):
    batches = _batches()
    tarball = make_cifar_python_tar(tmp_path / "cifar-10-python.tar.gz", batches)
    images, labels = read_cifar_python(tarball, split)
    want_images, want_labels = _expected(batches, split)
    assert np.array_equal(images, want_images) and np.array_equal(labels, want_labels)


def test_both_releases_agree(tmp_path):
    batches = _batches()
    binary = read_cifar_binary(make_cifar_binary_tar(tmp_path / "b.tar.gz", batches), "test")
    python = read_cifar_python(make_cifar_python_tar(tmp_path / "p.tar.gz", batches), "test")
    assert all(np.array_equal(a, b) for a, b in zip(binary, python))


def test_truncated_tarball(tmp_path):
    tarball = truncate(make_cifar_binary_tar(tmp_path / "cifar-10-binary.tar.gz", _batches(40)))
    with pytest.raises(
        DataFormatError, match=r"cifar-10-binary.tar.gz is a truncated or corrupt tar"
    ):
        read_cifar_binary(tarball, "train")


def test_missing_member_and_partial_record(tmp_path):
    batches = _batches()
    del batches["data_batch_3"]
    tarball = make_cifar_binary_tar(tmp_path / "x.tar.gz", batches)
    with pytest.raises(DataFormatError, match=r"no cifar-10-batches-bin/data_batch_3.bin"):
        read_cifar_binary(tarball, "train")
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(bytes(3073 * 2 + 5))
    with pytest.raises(DataFormatError, match=r"test_batch.bin: 6151 bytes is not a whole number"):
        read_cifar_binary(folder, "test")


def test_bad_labels(tmp_path):
    images, labels = cifar_arrays(3, 0)
    labels[1] = 12
    tarball = make_cifar_binary_tar(tmp_path / "x.tar.gz", {"test_batch": (images, labels)})
    with pytest.raises(DataFormatError, match=r"labels must lie in 0..9, found \d..12"):
        read_cifar_binary(tarball, "test")


def test_pickle_with_code_in_a_cifar_tarball_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    tarball = tmp_path / "cifar-10-python.tar.gz"
    data = pickle.dumps({"data": Evil(), "labels": [1]}, protocol=2)
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(
        UnsafePickleError, match=r"test_batch: refusing to unpickle __builtin__.print"
    ):
        read_cifar_python(tarball, "test")


def test_load_from_data_dir_then_cache(tmp_path, monkeypatch):
    batches = _batches()
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    make_cifar_binary_tar(folder / "cifar-10-binary.tar.gz", batches)
    trust(monkeypatch, CIFAR10, folder, train=20, test=4)
    first = load("cifar10", data_dir=tmp_path / "data", progress=False)
    assert first.spec == "cifar10:test" and first.shape == (3, 32, 32) and len(first) == 4
    assert np.array_equal(first.images, batches["test_batch"][0])
    assert first.classes[0] == "airplane"
    again = load("cifar10:test", progress=False)
    assert again.source.startswith("cache") and np.array_equal(again.images, first.images)


def test_load_refuses_a_file_whose_checksum_differs(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    tarball = make_cifar_binary_tar(folder / "cifar-10-binary.tar.gz", _batches())
    monkeypatch.setitem(CIFAR10.counts, "test", 4)
    with pytest.raises(DataNotFoundError) as caught, pytest.warns(UserWarning, match="skipping"):
        load("cifar10:test", data_dir=folder, progress=False)
    message = str(caught.value)
    assert f"{tarball}: sha256 {sha256(tarball)} differs from the published c4a38c50" in message
    assert "genood data fetch cifar10" in message and "cifar-10-binary.tar.gz" in message
    assert "www.cs.toronto.edu" in message  # the download was tried (and failed offline)
    assert not CacheEntry("cifar10", "test").exists()  # nothing cached from a bad file
