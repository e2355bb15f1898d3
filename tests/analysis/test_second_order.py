"""The second-order analysis against cases with a known answer.

A linear constant-volume flow ``z = M x`` per pixel (a product of 1x1 "convolutions") with a
Gaussian prior has an exactly quadratic ``log p(x)``, so the second-order expansion is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from genood.analysis.second_order import (
    alphas_from_matrices,
    first_level_matrices,
    linear_flow_curvature,
    log_prob_hessian,
    pixel_moments,
    predicted_gap,
    predicted_gap_from_curvature,
    second_order_analysis,
    squeeze2x2,
    variance_differences,
)
from genood.models.base import LikelihoodModel


class LinearCVFlow(LikelihoodModel):
    """``z[:, :, h, w] = U_K ... U_1 x[:, :, h, w]``, prior ``N(0, sigma^2 I)``: CV by design."""

    def __init__(self, matrices: list[np.ndarray], shape: tuple[int, int, int], prior_var: float):
        super().__init__(shape)
        self.mats = [torch.tensor(m, dtype=torch.float64) for m in matrices]
        self.prior_var = prior_var

    def channel_mixing_matrices(self) -> list[Tensor]:
        return list(self.mats)

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        z = x.double()
        for m in self.mats:
            z = torch.einsum("ij,bjhw->bihw", m, z)
        log_pz = -0.5 * (z**2 / self.prior_var + math.log(2 * math.pi * self.prior_var))
        h, w = self.image_shape[1:]
        logdet = sum(torch.linalg.slogdet(m)[1] for m in self.mats) * h * w
        return {
            "log_pz": log_pz.flatten(1).sum(1),
            "logdet": logdet.expand(x.shape[0]).clone(),
        }


def _gaussian(rng: np.random.Generator, n: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return mean + std * rng.standard_normal((n, *mean.shape))


def _log_prob(model: LinearCVFlow, x: np.ndarray) -> np.ndarray:
    return model.log_prob(torch.from_numpy(x)).numpy()


def test_paper_formula_is_exact_for_diagonal_mixing() -> None:
    """Diagonal 1x1 convs: alpha_c^2 is the exact curvature; eq. 6 matches Monte Carlo."""
    rng = np.random.default_rng(0)
    mats = [np.diag([2.0, 0.5, 1.0]), np.diag([0.5, 3.0, 1.0 / 1.5])]  # det 1 each
    model = LinearCVFlow(mats, (3, 4, 4), prior_var=0.7)
    mean = rng.normal(0, 0.1, (3, 4, 4))
    x_p = _gaussian(rng, 40_000, mean, rng.uniform(0.1, 0.3, (3, 4, 4)))
    x_q = _gaussian(rng, 40_000, mean, rng.uniform(0.05, 0.2, (3, 4, 4)))
    diffs = variance_differences(x_p, x_q, scale=1.0)
    predicted = predicted_gap(alphas_from_matrices(mats), 0.7, diffs)
    measured = _log_prob(model, x_q).mean() - _log_prob(model, x_p).mean()
    assert predicted > 0  # q varies less in every channel: predicted more likely
    assert predicted == pytest.approx(measured, rel=0.02)
    np.testing.assert_allclose(alphas_from_matrices(mats) ** 2, linear_flow_curvature(mats))


def test_exact_curvature_matches_monte_carlo_for_general_mixing() -> None:
    rng = np.random.default_rng(1)
    mats = [rng.normal(0, 0.6, (3, 3)) + np.eye(3) for _ in range(3)]
    model = LinearCVFlow(mats, (3, 4, 4), prior_var=1.0)
    mean = rng.normal(0, 0.1, (3, 4, 4))
    x_p = _gaussian(rng, 40_000, mean, rng.uniform(0.1, 0.3, (3, 4, 4)))
    x_q = _gaussian(rng, 40_000, mean, rng.uniform(0.05, 0.2, (3, 4, 4)))
    diffs = variance_differences(x_p, x_q, scale=1.0)
    exact = predicted_gap_from_curvature(linear_flow_curvature(mats), 1.0, diffs)
    measured = _log_prob(model, x_q).mean() - _log_prob(model, x_p).mean()
    assert exact == pytest.approx(measured, rel=0.03)
    # The paper's alpha is an approximation here, but its sign follows the variances.
    assert np.sign(predicted_gap(alphas_from_matrices(mats), 1.0, diffs)) == np.sign(measured)


def test_hessian_of_linear_flow_is_minus_mtm_over_sigma2() -> None:
    rng = np.random.default_rng(2)
    mats = [rng.normal(size=(2, 2)) for _ in range(2)]
    model = LinearCVFlow(mats, (2, 2, 2), prior_var=2.0)
    x0 = torch.from_numpy(rng.normal(size=(2, 2, 2)))
    grad, hess = log_prob_hessian(model.log_prob, x0, chunk=3)
    m = mats[1] @ mats[0]
    expected = np.zeros((8, 8))
    for pixel in range(4):  # channel-major layout: index = c * 4 + pixel
        idx = [c * 4 + pixel for c in range(2)]
        expected[np.ix_(idx, idx)] = -(m.T @ m) / 2.0
    np.testing.assert_allclose(hess, expected, atol=1e-10)
    x = x0.numpy().reshape(-1)
    np.testing.assert_allclose(grad, expected @ x, atol=1e-10)


def test_analysis_full_taylor_is_exact_for_quadratic_log_density() -> None:
    """On uint8 data with different means, the full quadratic expansion equals the measured gap."""
    rng = np.random.default_rng(3)
    mats = [rng.normal(0, 0.3, (3, 3)) + np.eye(3) for _ in range(2)]
    model = LinearCVFlow(mats, (3, 4, 4), prior_var=0.5)
    images_p = rng.integers(0, 256, (500, 3, 4, 4), dtype=np.uint8)
    images_q = np.clip(rng.normal(100, 20, (400, 3, 4, 4)), 0, 255).astype(np.uint8)

    def log_prob(images: np.ndarray) -> np.ndarray:
        x = model.preprocess(torch.from_numpy(images), dequantize=False)
        return model.log_prob(x).detach().numpy()

    result = second_order_analysis(
        images_p, images_q, log_prob(images_p), log_prob(images_q), model=model, prior_var=0.5
    )
    assert result.predicted["hessian_full"] == pytest.approx(result.measured_gap, rel=1e-6)
    assert set(result.predicted) == {"paper_formula", "hessian_variance", "hessian_full"}
    assert result.headline == "paper_formula"
    assert result.measured_gap > 0 and result.sign_match  # q has far lower variance
    assert result.measured_gap_bpd == pytest.approx(-result.measured_gap / (48 * math.log(2)))
    assert len(result.variance_differences) == 3 and all(d < 0 for d in result.variance_differences)
    assert result.to_dict()["alphas"] == pytest.approx(list(alphas_from_matrices(mats)))
    assert "predicted" in result.describe()


def test_variance_differences_scale_and_sign() -> None:
    rng = np.random.default_rng(4)
    wide = rng.integers(0, 256, (2000, 2, 3, 3), dtype=np.uint8)
    narrow = (wide // 2 + 64).astype(np.uint8)
    diffs = variance_differences(wide, narrow)
    _, var = pixel_moments(wide)
    # Halving the levels quarters the variance (up to the floor's rounding).
    np.testing.assert_allclose(diffs, -0.75 * var.sum(axis=(1, 2)), rtol=0.02)
    raw = variance_differences(wide, narrow, scale=1.0)
    np.testing.assert_allclose(raw, diffs * 256**2)
    np.testing.assert_allclose(variance_differences(wide, wide), 0.0)


def test_squeeze_layout_pairs_pixels_with_channels() -> None:
    x = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    s = squeeze2x2(x)
    assert s.shape == (2, 4, 2, 2)
    assert s[0, 1, 0, 0] == x[0, 0, 0, 1] and s[0, 2, 0, 0] == x[0, 0, 1, 0]
    # Squeezing permutes sub-pixels, so the total variance difference is unchanged.
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(50, 1, 4, 4)), rng.normal(size=(60, 1, 4, 4)) * 0.5
    assert variance_differences(a, b, layout=squeeze2x2).sum() == pytest.approx(
        variance_differences(a, b).sum()
    )


def test_first_level_and_bad_inputs() -> None:
    mats = [np.eye(4), 2 * np.eye(4), np.eye(8)]
    assert len(first_level_matrices(mats)) == 2
    with pytest.raises(ValueError, match="one size"):
        alphas_from_matrices(mats)
    with pytest.raises(ValueError, match="one curvature per channel"):
        predicted_gap(np.ones(4), 1.0, np.ones(3))
    with pytest.raises(ValueError, match="prior_var"):
        predicted_gap(np.ones(3), 0.0, np.ones(3))
    with pytest.raises(ValueError, match="N >= 2"):
        variance_differences(np.zeros((1, 1, 2, 2)), np.zeros((3, 1, 2, 2)))
    with pytest.raises(ValueError, match="no prediction"):
        second_order_analysis(
            np.zeros((3, 1, 2, 2), np.uint8),
            np.zeros((3, 1, 2, 2), np.uint8),
            np.zeros(3),
            np.zeros(3),
        )


@pytest.mark.realdata
def test_fashion_mnist_vs_mnist_variance(shared_data) -> None:
    """MNIST varies less than FashionMNIST: eq. 6 predicts MNIST is more likely (Figure 1)."""
    import gzip

    def idx(path) -> np.ndarray:
        data = gzip.decompress(path.read_bytes())
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 1, 28, 28)

    fashion = idx(shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    mnist = idx(shared_data / "mnist-10k" / "images-idx3-ubyte.gz")
    diffs = variance_differences(fashion, mnist)
    assert diffs[0] == pytest.approx(-15.05, abs=0.05)
    assert predicted_gap(np.ones(1), 1.0, diffs) > 0


def test_untrained_cv_glow_is_linear_so_the_full_expansion_is_exact() -> None:
    """At initialisation Glow's couplings output zero (zero-initialised last layer), so a
    CV-Glow with fixed N(0, I) priors is a linear map: log p(x) is exactly quadratic."""
    from genood.models import build
    from genood.models.scoring import score_images

    model = build("cv-glow", (1, 8, 8), levels=2, steps=2, hidden=8, learn_prior=False)
    rng = np.random.default_rng(6)
    images_p = rng.integers(0, 256, (200, 1, 8, 8), dtype=np.uint8)
    images_q = np.clip(rng.normal(90, 30, (200, 1, 8, 8)), 0, 255).astype(np.uint8)
    model.initialize(model.preprocess(torch.from_numpy(images_p[:100]), dequantize=True))
    p, q = score_images(model, images_p), score_images(model, images_q)
    result = second_order_analysis(images_p, images_q, p["log_prob"], q["log_prob"], model=model)
    assert result.predicted["hessian_full"] == pytest.approx(result.measured_gap, rel=1e-4)
    # Eq. 6 pairs the first level's 4x4 matrices with the squeezed image's 4 channels.
    assert result.alphas is not None and len(result.alphas) == 4
    assert result.variance_differences[0] < 0 and result.sign_match
