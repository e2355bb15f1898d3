"""Shared fixtures of the reproduce tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))  # the data tests' file builders

from data_builders import trust, write_mnist_like

import genood.data.sources as sources
from genood.data.catalog import FASHION_MNIST, MNIST


@pytest.fixture
def idx_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FashionMNIST (30 train, 100 test) and MNIST (10, 20) as official IDX files, offline."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", no_network)
    root = tmp_path / "data"
    write_mnist_like(root / "fashion-mnist", train=30, test=100)
    trust(monkeypatch, FASHION_MNIST, root / "fashion-mnist", train=30, test=100)
    write_mnist_like(root / "mnist", train=10, test=20)
    trust(monkeypatch, MNIST, root / "mnist", train=10, test=20)
    return root
