"""Ren et al.'s background model: the run's config with mutation, trained into RUN/background."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import tiny_config

from genood import config as cfg
from genood.train import background_config, fit, fit_background, load_run


def test_background_config() -> None:
    main = tiny_config("npz:x.npz", steps=10)
    config = background_config(
        main, mutation_rate=0.3, steps=4, overrides=["train.weight_decay=1e-4"]
    )
    assert config.data.mutation_rate == 0.3
    assert config.train.steps == 4 and config.train.weight_decay == 1e-4
    assert config.model == main.model and main.data.mutation_rate == 0.0
    with pytest.raises(ValueError, match="mutation rate"):
        background_config(main, mutation_rate=0.0)


def test_fit_background(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    fit(tiny_config(tiny_data["train"], steps=2), tmp_path / "run", progress=False)
    result = fit_background(tmp_path / "run", mutation_rate=0.2, steps=3, progress=False)
    assert result["step"] == 3
    background = load_run(tmp_path / "run" / "background")
    assert background.config.data.mutation_rate == 0.2
    assert background.model.image_shape == load_run(tmp_path / "run").model.image_shape
    assert cfg.load(tmp_path / "run" / "background" / "config.toml").data.mutation_rate == 0.2


def test_fit_background_needs_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train the main model first"):
        fit_background(tmp_path)
