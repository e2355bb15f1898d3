"""Fixtures of the training tests: tiny npz data sets and tiny trained runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from train_helpers import tiny_config, write_images

from genood.train import fit


@pytest.fixture
def tiny_data(tmp_path: Path) -> dict[str, str]:
    """``train`` (48 images) and ``test`` (16 images) specs of 1x8x8 npz files."""
    return {
        "train": write_images(tmp_path / "train.npz", 48, seed=1),
        "test": write_images(tmp_path / "test.npz", 16, seed=2),
    }


@pytest.fixture
def padded_run(tmp_path: Path) -> Path:
    """A tiny Glow trained on 6x6 images padded to 8x8 (recorded preprocessing)."""
    train = write_images(tmp_path / "small.npz", 32, shape=(1, 6, 6))
    config = tiny_config(train, steps=2)
    config.data.pad_to = 8
    fit(config, tmp_path / "run", progress=False)
    return tmp_path / "run"


@pytest.fixture
def vae_run(tmp_path: Path) -> Path:
    """A tiny VAE trained two steps, scoring with the IWAE bound and K = 4."""
    train = write_images(tmp_path / "train.npz", 16)
    config = tiny_config(train, steps=2)
    config.model.name = "vae"
    config.model.hparams = {"latent_dim": 2, "hidden": 4, "downsamples": 1, "iw_samples": 4}
    fit(config, tmp_path / "vae", progress=False)
    return tmp_path / "vae"
