"""Ren et al.'s likelihood ratio: the background model, the mutation, the architecture check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genood.ood import LikelihoodRatio, check_same_architecture, mutate

from .conftest import GaussianModel, check_detector


def test_score_is_the_bits_per_dim_difference(model, background, data) -> None:
    detector = LikelihoodRatio(model, background).fit(data["fit"])
    images = torch.from_numpy(data["test"][:30])
    expected = (model.bits_per_dim(images) - background.bits_per_dim(images)).detach().numpy()
    np.testing.assert_allclose(detector.decision_function(data["test"][:30]), expected, atol=1e-5)


def test_detects_and_meets_its_fpr(model, background, data) -> None:
    check_detector(LikelihoodRatio(model, background), data, ood=("noise", "constant"))


def test_mutation_rate_and_values() -> None:
    images = np.full((200, 1, 8, 8), 7, np.uint8)
    mutated = mutate(images, 0.25, rng=0)
    assert mutated.dtype == np.uint8 and mutated.shape == images.shape
    assert np.all(images == 7), "the input must be left untouched"
    changed = np.mean(mutated != images)
    assert changed == pytest.approx(0.25 * 255 / 256, abs=0.01)  # 1/256 redraw the same value
    assert np.array_equal(mutate(images, 0.0, rng=0), images)
    assert np.array_equal(mutate(images, 0.25, rng=3), mutate(images, 0.25, rng=3))
    assert mutate(images, 1.0, rng=0).std() > 60  # uniform on 0..255: std ~ 74


def test_mutation_errors() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mutate(np.zeros((1, 1, 2, 2), np.uint8), 1.5)
    with pytest.raises(TypeError, match="uint8"):
        mutate(np.zeros((1, 1, 2, 2), np.float32), 0.1)


class _Wider(GaussianModel):
    def __init__(self) -> None:
        super().__init__()
        self.extra = nn.Parameter(torch.zeros(3))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GaussianModel((1, 8, 7)), r"image shape \(1, 8, 7\)"),
        (_Wider, "class _Wider"),
    ],
)
def test_background_of_another_architecture_is_refused(model, make, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        LikelihoodRatio(model, make())
    assert "genood train-background" in str(error.value)


def test_parameter_shapes_are_compared(model) -> None:
    other = GaussianModel()
    other.log_std = nn.Parameter(torch.zeros(1, 8, 4))
    with pytest.raises(ValueError, match="log_std"):
        check_same_architecture(model, other)
    check_same_architecture(model, GaussianModel())  # same architecture, other weights: fine
