"""Tiny likelihood models and synthetic 1x8x8 image sets for the detector tests.

``GaussianModel`` is a per-pixel diagonal Gaussian over the model space of
:class:`~genood.models.base.LikelihoodModel`, fitted in closed form: exact, instant, and a real
likelihood model for every detector. ``blobs`` are dark images with one bright Gaussian blob;
obvious outliers are uniform noise and constant mid-grey images.
"""

from __future__ import annotations

import math
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from genood.models.base import LikelihoodModel

SHAPE = (1, 8, 8)
HAS_IMAGECODECS = find_spec("imagecodecs") is not None
needs_imagecodecs = pytest.mark.skipif(
    not HAS_IMAGECODECS, reason="needs the codecs extra: pip install 'genood[codecs]'"
)


class GaussianModel(LikelihoodModel):
    """``x ~ N(mean, diag(exp(log_std))^2)`` per sub-pixel; one term, ``log_pz``."""

    def __init__(self, image_shape: tuple[int, int, int] = SHAPE) -> None:
        super().__init__(image_shape)
        self.mean = nn.Parameter(torch.zeros(image_shape))
        self.log_std = nn.Parameter(torch.zeros(image_shape))

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        z = (x - self.mean) * torch.exp(-self.log_std)
        log_density = -0.5 * z**2 - self.log_std - 0.5 * math.log(2 * math.pi)
        return {"log_pz": log_density.flatten(1).sum(dim=1)}

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        noise = torch.randn(n, *self.image_shape) * temperature
        return self.mean + noise * torch.exp(self.log_std)

    @torch.no_grad()
    def fit(self, images: np.ndarray, seed: int = 0) -> GaussianModel:
        """Closed-form maximum likelihood on dequantised ``images``."""
        generator = torch.Generator().manual_seed(seed)
        x = self.preprocess(torch.from_numpy(images), dequantize=True, generator=generator)
        self.mean.copy_(x.mean(dim=0))
        self.log_std.copy_(x.std(dim=0).clamp_min(1e-3).log())
        return self


def make_blobs(n: int, seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Dark images, each with one bright Gaussian blob at a random place, plus a little noise."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    centres = rng.uniform(2, h - 3, size=(n, 2))
    widths = rng.uniform(1.0, 2.0, size=n)
    blob = np.exp(
        -((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2)
        / (2 * widths[:, None, None] ** 2)
    )
    images = 20 + 200 * blob[:, None] + rng.normal(0, 6, size=(n, c, h, w))
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def make_noise(n: int, seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def make_constant(n: int, seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    values = np.random.default_rng(seed).integers(100, 200, size=n, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (n, *shape)).copy()


@pytest.fixture(scope="session")
def data() -> dict[str, np.ndarray]:
    """Disjoint in-distribution splits and two obvious OOD sets."""
    return {
        "train": make_blobs(2000, seed=1),
        "fit": make_blobs(500, seed=2),
        "val": make_blobs(1000, seed=3),
        "test": make_blobs(1000, seed=4),
        "noise": make_noise(300, seed=5),
        "constant": make_constant(300, seed=6),
    }


@pytest.fixture(scope="session")
def model(data: dict[str, np.ndarray]) -> GaussianModel:
    return GaussianModel().fit(data["train"]).eval()


@pytest.fixture(scope="session")
def background(data: dict[str, np.ndarray]) -> GaussianModel:
    """Ren et al.'s background model: the same model on inputs mutated at rate 0.2."""
    from genood.ood.ratio import mutate

    return GaussianModel().fit(mutate(data["train"], 0.2, rng=7), seed=1).eval()


@pytest.fixture(scope="session")
def members(data: dict[str, np.ndarray]) -> list[GaussianModel]:
    """Three "independently trained" members: fits on disjoint thirds of the training set."""
    thirds = np.array_split(data["train"], 3)
    return [GaussianModel().fit(part, seed=i).eval() for i, part in enumerate(thirds)]


def left_heavy(images: np.ndarray) -> np.ndarray:
    """A label for the blobs: 1 when the left half is brighter than the right."""
    half = images.shape[-1] // 2
    left = images[..., :half].astype(np.int64).sum(axis=(1, 2, 3))
    return (left > images[..., half:].astype(np.int64).sum(axis=(1, 2, 3))).astype(np.int64)


@pytest.fixture(scope="session")
def classifier(data: dict[str, np.ndarray]):
    """A tiny :class:`~genood.ood.classifier.Classifier` on the blobs (which half holds it)."""
    from genood.ood.classifier import Classifier

    train = data["train"]
    return Classifier(SHAPE, num_classes=2, width=4).fit(train, left_heavy(train), epochs=1)


def check_detector(detector, data: dict[str, np.ndarray], ood: tuple[str, ...]) -> None:
    """The issue's acceptance for a detector on a tiny model.

    Fitted on one held-out split and calibrated on another at 10% FPR, it must reject a fresh
    in-distribution test split at a rate within three binomial standard errors of 10%, and rank
    each obvious OOD set above the test split with AUROC > 0.9.
    """
    from genood.ood import metrics

    detector.fit(data["fit"]).calibrate(data["val"], target_fpr=0.1)
    in_scores = detector.decision_function(data["test"])
    fpr = float(np.mean(detector.reject(in_scores)))
    assert fpr <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / len(in_scores)), fpr
    for name in ood:
        assert metrics.auroc(in_scores, detector.decision_function(data[name])) > 0.9, name
