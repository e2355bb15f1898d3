"""The shipped flow configs load, and build a model for their data's image shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from genood import config
from genood.models import build

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# config file -> image shape of its data (after padding)
FLOW_CONFIGS = {
    "hello.toml": (1, 32, 32),
    "fashion-mnist-cpu.toml": (1, 32, 32),
    "fashion-mnist-28-cpu.toml": (1, 28, 28),
    "cv-glow-fashion-mnist-cpu.toml": (1, 32, 32),
    "realnvp-fashion-mnist-cpu.toml": (1, 28, 28),
    "fashion-mnist.toml": (1, 32, 32),
    "cifar10.toml": (3, 32, 32),
    "svhn.toml": (3, 32, 32),
    "celeba.toml": (3, 32, 32),
}


@pytest.mark.parametrize("name", sorted(FLOW_CONFIGS))
def test_config_builds_its_model(name: str) -> None:
    run = config.load(CONFIGS / name)
    shape = FLOW_CONFIGS[name]
    size = run.data.pad_to or (28 if run.data.train.startswith("fashion-mnist") else 32)
    assert (shape[1], shape[2]) == (size, size)
    hparams = dict(run.model.hparams)
    if not name.endswith("-cpu.toml") and name != "hello.toml":
        hparams["hidden"] = 4  # the paper-scale width is not needed to check the structure
    model = build(run.model.name, image_shape=shape, **hparams)
    assert model.num_dims == shape[0] * shape[1] * shape[2]
    if run.model.name == "cv-glow":
        assert model.hparams["coupling"] == "additive"


def test_paper_configs_are_paper_scale() -> None:
    for name in ("fashion-mnist.toml", "cifar10.toml", "svhn.toml", "celeba.toml"):
        hparams = config.load(CONFIGS / name).model.hparams
        assert (hparams["levels"], hparams["steps"]) == (3, 32)
        assert hparams["hidden"] >= 400


def test_the_readme_hello_world_config_trains_200_steps() -> None:
    run = config.load(CONFIGS / "hello.toml")
    assert run.train.steps == 200 and run.model.name == "glow"
