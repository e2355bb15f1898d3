"""The model registry: built-in names, user-registered models, clear errors."""

from __future__ import annotations

import re

import pytest

from genood.models import LikelihoodModel, available, build, register


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: .*glow"):
        build("no-such-model", (1, 8, 8))


def test_a_registered_model_can_be_built() -> None:
    @register("test-constant")
    def _build(image_shape: tuple[int, int, int]) -> LikelihoodModel:
        return LikelihoodModel(image_shape)

    assert "test-constant" in available()
    assert build("test-constant", (1, 4, 4)).image_shape == (1, 4, 4)


BUILT_IN = ["glow", "cv-glow", "realnvp", "pixelcnn", "vae", "hvae", "diffusion", "bytelm"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_model_refuses_an_unknown_hyper_parameter_the_same_way(name: str) -> None:
    with pytest.raises(TypeError) as error:
        build(name, (1, 8, 8), no_such_key=1)
    message = str(error.value)
    assert message.startswith(f"{name} got unknown hyper-parameter(s) ['no_such_key']; it takes: ")
    assert re.search(r"it takes: \w+=\S+, \w+=", message)  # the accepted keys, with defaults


def test_glow_and_realnvp_are_separate_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys, genood.models.glow; assert 'genood.models.realnvp' not in sys.modules; "
        "from genood.models import build; build('realnvp', (1, 8, 8), levels=2, hidden=4)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hvae_latent_channels_take_a_toml_array() -> None:
    model = build("hvae", (1, 8, 8), latent_channels=[2, 2], hidden=4, iw_samples=2)
    assert model.describe()["latent_channels"] == (2, 2)
    with pytest.raises(TypeError, match="latent_channels must be a list of int"):
        build("hvae", (1, 8, 8), latent_channels="2,2")


def test_the_diffusion_family_is_built_in() -> None:
    assert "diffusion" in available()
    model = build("diffusion", (1, 8, 8), hidden=8, levels=1, score_samples=2)
    assert isinstance(model, LikelihoodModel) and model.is_bound
