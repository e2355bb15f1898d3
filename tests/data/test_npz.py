"""``npz:PATH``: arrays a user already has, in NCHW, NHWC or NHW layout."""

from __future__ import annotations

import numpy as np
import pytest

from genood.data import load
from genood.data.errors import DataFormatError
from genood.data.formats.npz import read_npz


@pytest.fixture
def nchw() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 3, 8, 6), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_layouts(tmp_path, nchw, layout):
    stored = nchw if layout == "nchw" else nchw.transpose(0, 2, 3, 1)
    np.savez(tmp_path / "a.npz", images=stored, labels=np.arange(5))
    images, labels = read_npz(tmp_path / "a.npz")
    assert np.array_equal(images, nchw) and labels.dtype == np.int64


def test_grayscale_without_labels(tmp_path):
    gray = np.zeros((4, 7, 7), np.uint8)
    np.savez_compressed(tmp_path / "g.npz", images=gray)
    data = load(f"npz:{tmp_path / 'g.npz'}", limit=3)
    assert data.images.shape == (3, 1, 7, 7) and list(data.labels) == [-1, -1, -1]
    assert data.spec == f"npz:{tmp_path / 'g.npz'}" and data.name == "npz"


def test_relative_path_is_looked_up_in_the_data_dir(tmp_path, monkeypatch):
    np.savez(tmp_path / "mine.npz", images=np.zeros((2, 1, 4, 4), np.uint8))
    monkeypatch.chdir(tmp_path.parent)
    assert len(load("npz:mine.npz", data_dir=tmp_path)) == 2


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((2, 4, 4), np.uint8)}, r"no 'images' array; expected keys"),
        (
            {"images": np.zeros((2, 4, 4), np.float32)},
            r"images must be uint8 \(0..255\), found float32",
        ),
        ({"images": np.zeros((2, 5, 4, 4), np.uint8)}, r"none of \(N, C, H, W\)"),
        (
            {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.arange(3)},
            r"labels must be integers of shape \(2,\)",
        ),
        (
            {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([None, 1])},
            r"object arrays are refused",
        ),
    ],
)
def test_bad_files(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataFormatError, match=message):
        read_npz(tmp_path / "bad.npz")


def test_not_an_npz_and_missing(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match=r"x.npz is not a readable .npz file"):
        read_npz(tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match=r"nope.npz does not exist"):
        load(f"npz:{tmp_path / 'nope.npz'}")
