"""Graying on synthetic data: a Gaussian model's likelihood rises as the images gray."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from genood.analysis.graying import CENTERS, data_mean, gray_images, graying_curve


def _images(rng: np.random.Generator, n: int = 400) -> np.ndarray:
    mean = rng.uniform(60, 190, (2, 6, 6))
    return np.clip(rng.normal(mean, 35, (n, 2, 6, 6)), 0, 255).round().astype(np.uint8)


def _gaussian_bpd(train: np.ndarray):
    """Bits/dim under a diagonal Gaussian fitted to ``train`` (a stand-in trained model)."""
    x = train.astype(np.float64)
    mu, var = x.mean(axis=0), x.var(axis=0) + 1.0
    dims = mu.size

    def score(images: np.ndarray) -> np.ndarray:
        d = images.astype(np.float64) - mu
        log_p = -0.5 * (d**2 / var + np.log(2 * np.pi * var)).reshape(len(images), -1).sum(1)
        return -log_p / (dims * math.log(2))

    return score


@pytest.mark.parametrize("center", ["channel", "pixel"])
def test_likelihood_rises_as_images_gray(center: str) -> None:
    rng = np.random.default_rng(0)
    images = _images(rng)
    factors = [1.0, 0.75, 0.5, 0.25, 0.0]
    curve = graying_curve(_gaussian_bpd(images), images, factors, center=center)
    assert [f for f, _ in curve] == factors
    bpd = [b for _, b in curve]
    if center == "pixel":  # covariance shrinks by factor^2 about the fitted mean: monotone
        assert all(a > b for a, b in itertools.pairwise(bpd))
    else:
        # Toward one flat gray per channel every pixel's mean moves as well: under this model
        # the partly grayed sets are more likely, the flat endpoint need not be.
        assert all(b < bpd[0] for b in bpd[1:-1])


def test_gray_images_endpoints_and_rounding() -> None:
    rng = np.random.default_rng(1)
    images = _images(rng, 50)
    np.testing.assert_array_equal(gray_images(images, 1.0), images)
    flat = gray_images(images, 0.0, "channel")
    expected = np.rint(images.mean(axis=(0, 2, 3))).astype(np.uint8)
    assert flat.shape == images.shape and (flat == expected[None, :, None, None]).all()
    half = gray_images(images, 0.5, "pixel")
    assert half.dtype == np.uint8
    centre = data_mean(images, "pixel")
    np.testing.assert_allclose(half, np.rint(centre + 0.5 * (images - centre)), atol=0)
    assert half.astype(float).var(axis=0).mean() < images.astype(float).var(axis=0).mean() / 3


def test_keep_black_grays_only_the_object() -> None:
    images = np.zeros((4, 1, 6, 6), np.uint8)
    images[:, :, 2:4, 2:4] = np.array([40, 120, 200, 250], np.uint8)[:, None, None, None]
    for center in CENTERS:
        grayed = gray_images(images, 0.5, center, keep_black=True)
        background = images == 0
        assert (grayed[background] == 0).all()  # the background stays exactly black
        everything = gray_images(images, 0.5, center)
        np.testing.assert_array_equal(grayed[~background], everything[~background])
        if center == "channel":  # plain graying lifts it (per pixel, only where the mean is > 0)
            assert (everything[background] > 0).all()
    seen: list[np.ndarray] = []
    graying_curve(lambda x: seen.append(x) or np.zeros(len(x)), images, [0.0], keep_black=True)
    assert (seen[0][images == 0] == 0).all()


def test_bad_inputs() -> None:
    images = np.zeros((3, 1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="factor"):
        gray_images(images, 1.5)
    with pytest.raises(ValueError, match="uint8"):
        gray_images(images.astype(float), 0.5)
    with pytest.raises(ValueError, match="center"):
        gray_images(images, 0.5, "image")
    with pytest.raises(ValueError, match="one bits/dim per image"):
        graying_curve(lambda x: np.zeros(2), images, [1.0])
