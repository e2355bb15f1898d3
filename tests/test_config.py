"""Typed run configs: TOML round trip, overrides, and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from genood import config as cfg


def test_defaults_round_trip_through_toml(tmp_path: Path) -> None:
    config = cfg.RunConfig()
    config.model.hparams = {"levels": 2, "hidden": 16, "coupling": "additive"}
    config.data.track = ["mnist-10k:test"]
    path = tmp_path / "config.toml"
    cfg.save(config, path)
    assert cfg.load(path) == config


def test_overrides_parse_toml_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[model]\nname = "glow"\n[train]\nsteps = 10\n')
    config = cfg.load(
        path,
        [
            "train.steps=25",
            "train.lr=3e-4",
            "model.hparams.coupling=additive",
            "train.compile=true",
        ],
    )
    assert config.train.steps == 25
    assert config.train.lr == pytest.approx(3e-4)
    assert config.model.hparams == {"coupling": "additive"}
    assert config.train.compile is True


def test_int_is_accepted_for_float_fields() -> None:
    assert cfg.from_dict({"train": {"lr": 1}}).train.lr == 1.0


def test_unknown_key_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['stepz'\] in \[train\]"):
        cfg.from_dict({"train": {"stepz": 3}})


def test_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="train.steps must be int"):
        cfg.from_dict({"train": {"steps": "many"}})


def test_bad_override_syntax() -> None:
    with pytest.raises(ValueError, match="key.path=value"):
        cfg.apply_overrides({}, ["train.steps"])


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cfg.load("/nonexistent/config.toml")


def test_dumps_toml_is_valid_toml() -> None:
    values = {"a": 1, "b": {"c": 'x"y', "d": [1.5, 2.0], "e": {"f": True}}}
    assert tomllib.loads(cfg.dumps_toml(values)) == values
