"""``load_run``: the trained model in eval mode with its config and preprocessing; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from genood.data.transforms import Preprocessing
from genood.train import load_run


def test_load_run(padded_run: Path) -> None:
    loaded = load_run(padded_run)
    assert not loaded.model.training
    assert loaded.model.image_shape == (1, 8, 8)
    assert loaded.preprocessing == Preprocessing(pad_to=8)
    assert loaded.step == 2 and loaded.finished
    assert loaded.config.data.pad_to == 8


def test_load_run_without_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_run(tmp_path)


def test_load_run_refuses_settings_that_change_parameters(vae_run: Path) -> None:
    with pytest.raises(ValueError, match=r"latent_dim.*change the parameters.*scoring settings"):
        load_run(vae_run, hparams={"latent_dim": 3})


def test_load_run_is_still_importable_from_train_score() -> None:
    from genood.train import score

    assert score.load_run is load_run
