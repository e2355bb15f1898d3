"""SVHN ``*_32x32.mat`` reader on .mat files written in the official layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from data_builders import cifar_arrays, trust

from genood.data import load
from genood.data.catalog import SVHN
from genood.data.errors import DataFormatError
from genood.data.formats.svhn import read_svhn_mat, write_svhn_mat


def test_reads_the_official_layout(tmp_path):
    images, labels = cifar_arrays(9, 0)
    write_svhn_mat(tmp_path / "test_32x32.mat", images, labels)
    raw = scipy.io.loadmat(tmp_path / "test_32x32.mat")
    assert raw["X"].shape == (32, 32, 3, 9) and raw["y"].shape == (9, 1)
    assert set(raw["y"].ravel()) <= set(range(1, 11))  # 10 stands for the digit 0
    out_images, out_labels = read_svhn_mat(tmp_path / "test_32x32.mat")
    assert out_images.shape == (9, 3, 32, 32) and out_images.flags.c_contiguous
    assert np.array_equal(out_images, images) and np.array_equal(out_labels, labels)


def test_missing_keys_are_named(tmp_path):
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"images": np.zeros((2, 2), np.uint8)})
    with pytest.raises(
        DataFormatError, match=r"train_32x32.mat: no variable\(s\) \['X', 'y'\].*holds \['images'\]"
    ):
        read_svhn_mat(tmp_path / "train_32x32.mat")


def test_not_a_mat_file_and_truncation(tmp_path):
    (tmp_path / "a.mat").write_bytes(b"hello, not a mat file" * 10)
    with pytest.raises(DataFormatError, match=r"a.mat is not a readable MATLAB .mat file"):
        read_svhn_mat(tmp_path / "a.mat")
    images, labels = cifar_arrays(20, 0)
    write_svhn_mat(tmp_path / "b.mat", images, labels)
    data = (tmp_path / "b.mat").read_bytes()
    (tmp_path / "b.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"b.mat"):
        read_svhn_mat(tmp_path / "b.mat")


def test_wrong_array_shape(tmp_path):
    scipy.io.savemat(
        tmp_path / "c.mat", {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))}
    )
    with pytest.raises(DataFormatError, match=r"X must be uint8 of shape \(32, 32, 3, N\)"):
        read_svhn_mat(tmp_path / "c.mat")


def test_load_svhn_split_from_data_dir(tmp_path, monkeypatch):
    images, labels = cifar_arrays(6, 3)
    write_svhn_mat(tmp_path / "extra_32x32.mat", images, labels)
    trust(monkeypatch, SVHN, tmp_path, extra=6)
    data = load("svhn:extra", data_dir=tmp_path, limit=4, progress=False)
    assert data.spec == "svhn:extra" and len(data) == 4
    assert np.array_equal(data.images, images[:4]) and np.array_equal(data.labels, labels[:4])
    with pytest.raises(
        ValueError, match=r"svhn has no split 'valid'; its splits are train, test, extra"
    ):
        load("svhn:valid", data_dir=tmp_path)
