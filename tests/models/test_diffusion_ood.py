"""The diffusion model's OOD statistics: multi-level reconstruction errors (Graham et al. 2023)
and probability-flow path statistics (DiffPath), checked against an exact Gaussian denoiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from genood.models import build
from genood.models.diffusion import DiffusionModel
from genood.models.diffusion_ood import (
    path_statistics,
    reconstruct,
    reconstruction_errors,
    zscore_score,
)

SHAPE = (1, 8, 8)
DATA_STD = 0.2  # the oracle's data: x ~ N(0, 0.2^2) per sub-pixel, in model space


class GaussianOracle(nn.Module):
    """The exact noise prediction for Gaussian data: ``E[eps | z_t] = sigma z / (alpha^2 s^2 +
    sigma^2)``; its DDIM map is the probability-flow ODE of N(0, s^2 I)."""

    def forward(self, z: Tensor, gamma: Tensor) -> Tensor:
        var = torch.sigmoid(gamma)[:, None, None, None]
        return z * var.sqrt() / ((1 - var) * DATA_STD**2 + var)


def oracle_model() -> DiffusionModel:
    model: DiffusionModel = build("diffusion", SHAPE, hidden=8, levels=1, schedule="fixed")  # type: ignore[assignment]
    model.net = GaussianOracle()  # type: ignore[assignment]
    return model.eval()


def gaussian_images(n: int, scale: float, seed: int = 0) -> np.ndarray:
    """Images whose model-space values are ``N(0, (scale * DATA_STD)^2)``, quantised."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale * DATA_STD, (n, *SHAPE))
    return np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)


def test_a_barely_noised_image_is_reconstructed() -> None:
    model = oracle_model()
    x = model.preprocess(torch.from_numpy(gaussian_images(4, 1.0)))
    with torch.inference_mode():
        x_hat = reconstruct(model, x, 0.01, 1, torch.randn_like(x))
    assert (x_hat - x).abs().max() < 2 / 255  # within an 8-bit level


def test_outliers_reconstruct_worse_and_their_paths_are_longer() -> None:
    model = oracle_model()
    typical, outlying = gaussian_images(32, 1.0, seed=1), gaussian_images(32, 3.0, seed=2)
    errors_in = reconstruction_errors(model, typical, levels=(0.5, 0.6, 0.7), steps=10)
    errors_out = reconstruction_errors(model, outlying, levels=(0.5, 0.6, 0.7), steps=10)
    assert errors_in.shape == (32, 3)
    assert (errors_out.mean(axis=0) > errors_in.mean(axis=0)).all()  # (at t <= 0.3: noise level)
    reference = reconstruction_errors(model, gaussian_images(32, 1.0, seed=3), (0.5, 0.6, 0.7))
    assert zscore_score(errors_out, reference).mean() > zscore_score(errors_in, reference).mean()

    paths_in, paths_out = path_statistics(model, typical), path_statistics(model, outlying)
    assert set(paths_in) == {"rate", "curvature"} and paths_in["rate"].shape == (32,)
    assert paths_out["rate"].mean() > paths_in["rate"].mean()
    assert paths_out["curvature"].mean() > paths_in["curvature"].mean()


def test_statistics_are_per_image_deterministic_and_leave_the_global_rng_alone() -> None:
    model: DiffusionModel = build("diffusion", SHAPE, hidden=8, levels=1)  # type: ignore[assignment]
    images = gaussian_images(6, 1.0)
    state = torch.get_rng_state()
    whole = reconstruction_errors(model, images, levels=(0.2, 0.6), steps=4, batch_size=4)
    paths = path_statistics(model, images, steps=4, batch_size=4)
    assert torch.equal(torch.get_rng_state(), state)
    alone = reconstruction_errors(model, images[3:4], levels=(0.2, 0.6), steps=4)
    np.testing.assert_allclose(alone[0], whole[3], rtol=1e-5)
    np.testing.assert_allclose(
        path_statistics(model, images[3:4], steps=4)["rate"][0], paths["rate"][3], rtol=1e-5
    )
    other = reconstruction_errors(model, images, levels=(0.2, 0.6), steps=4, seed=1)
    assert not np.array_equal(other, whole)


def test_bad_settings_are_refused() -> None:
    model = oracle_model()
    images = gaussian_images(2, 1.0)
    with pytest.raises(ValueError, match="noise levels"):
        reconstruction_errors(model, images, levels=(0.0, 0.5))
    with pytest.raises(ValueError, match="DDIM step"):
        path_statistics(model, images, steps=0)
    with pytest.raises(ValueError, match="reference"):
        zscore_score(np.zeros((3, 2)), np.zeros((1, 2)))
