"""Fixtures of the training tests: tiny npz data sets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from train_helpers import write_images


@pytest.fixture
def tiny_data(tmp_path: Path) -> dict[str, str]:
    """``train`` (48 images) and ``test`` (16 images) specs of 1x8x8 npz files."""
    return {
        "train": write_images(tmp_path / "train.npz", 48, seed=1),
        "test": write_images(tmp_path / "test.npz", 16, seed=2),
    }
