"""IDX reader: round trips, gzip or not, and every malformed-file case."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from data_builders import digits, truncate, write_idx_split

from genood.data.errors import DataFormatError
from genood.data.formats.idx import read_idx, read_idx_images_labels, write_idx


def test_round_trip_gzipped_and_plain(tmp_path):
    images, _labels = digits(7)
    for name in ("a-idx3-ubyte.gz", "a-idx3-ubyte"):
        write_idx(tmp_path / name, images)
        out = read_idx(tmp_path / name, ndim=3)
        assert out.dtype == np.uint8 and np.array_equal(out, images)
    write_idx(tmp_path / "f.idx", np.arange(6, dtype=">i4").reshape(2, 3))
    assert np.array_equal(read_idx(tmp_path / "f.idx"), np.arange(6).reshape(2, 3))


def test_header_is_the_published_one(tmp_path):
    images, labels = digits(3)
    image_file, label_file = write_idx_split(tmp_path, "t10k", images, labels)
    assert gzip.decompress(image_file.read_bytes())[:16] == struct.pack(">IIII", 2051, 3, 28, 28)
    assert gzip.decompress(label_file.read_bytes())[:8] == struct.pack(">II", 2049, 3)


def test_images_and_labels_come_out_nchw_int64(tmp_path):
    images, labels = digits(5)
    out_images, out_labels = read_idx_images_labels(*write_idx_split(tmp_path, "x", images, labels))
    assert out_images.shape == (5, 1, 28, 28) and out_labels.dtype == np.int64
    assert np.array_equal(out_images[:, 0], images) and np.array_equal(out_labels, labels)


def test_wrong_magic_number_names_the_file(tmp_path):
    images, labels = digits(4)
    image_file, label_file = write_idx_split(tmp_path, "x", images, labels)
    with pytest.raises(
        DataFormatError,
        match=r"x-labels-idx1-ubyte.gz: wrong IDX magic number 0x00000801.*0x00000803",
    ):
        read_idx_images_labels(label_file, image_file)
    (tmp_path / "junk").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataFormatError, match="junk: wrong IDX magic"):
        read_idx(tmp_path / "junk")


def test_truncated_and_overlong_bodies(tmp_path):
    images, _ = digits(4)
    write_idx(tmp_path / "a", images)
    data = (tmp_path / "a").read_bytes()
    (tmp_path / "a").write_bytes(data[:-10])
    with pytest.raises(
        DataFormatError, match=r"a: truncated: the header promises shape \(4, 28, 28\)"
    ):
        read_idx(tmp_path / "a")
    (tmp_path / "a").write_bytes(data + b"\0")
    with pytest.raises(DataFormatError, match="longer than its header says"):
        read_idx(tmp_path / "a")
    (tmp_path / "a").write_bytes(data[:2])
    with pytest.raises(DataFormatError, match="too short"):
        read_idx(tmp_path / "a")


def test_corrupt_gzip(tmp_path):
    images, _ = digits(50)
    write_idx(tmp_path / "a.gz", images)
    truncate(tmp_path / "a.gz")
    with pytest.raises(DataFormatError, match=r"a.gz is a truncated or corrupt gzip file"):
        read_idx(tmp_path / "a.gz")


def test_image_and_label_counts_must_agree(tmp_path):
    images, labels = digits(5)
    image_file, _ = write_idx_split(tmp_path, "x", images, labels)
    _, label_file = write_idx_split(tmp_path, "y", images[:3], labels[:3])
    with pytest.raises(DataFormatError, match="holds 5 images but .* holds 3 labels"):
        read_idx_images_labels(image_file, label_file)
