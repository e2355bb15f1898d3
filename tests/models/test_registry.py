"""The model registry: built-in names, user-registered models, clear errors."""

from __future__ import annotations

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
