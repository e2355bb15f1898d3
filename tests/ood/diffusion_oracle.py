"""A diffusion model whose denoiser is exact for Gaussian data, for the diffusion detectors'
tests: in-distribution images are ``N(0, s^2)`` per sub-pixel (model space), outliers wider."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from genood.models import build
from genood.models.diffusion import DiffusionModel

from .conftest import SHAPE

DATA_STD = 0.2


class GaussianOracle(nn.Module):
    """``E[eps | z_t] = sigma z / (alpha^2 s^2 + sigma^2)`` for ``x ~ N(0, s^2 I)``."""

    def forward(self, z: Tensor, gamma: Tensor) -> Tensor:
        var = torch.sigmoid(gamma)[:, None, None, None]
        return z * var.sqrt() / ((1 - var) * DATA_STD**2 + var)


def oracle_model() -> DiffusionModel:
    """A (1, 8, 8) diffusion model with the fixed schedule and the exact Gaussian denoiser."""
    model: DiffusionModel = build("diffusion", SHAPE, hidden=4, levels=0, schedule="fixed")  # type: ignore[assignment]
    model.net = GaussianOracle()  # type: ignore[assignment]
    return model.eval()


def gaussian_images(n: int, scale: float, seed: int) -> np.ndarray:
    """uint8 images whose model-space values are ``N(0, (scale s)^2)``, quantised."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale * DATA_STD, (n, *SHAPE))
    return np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)
