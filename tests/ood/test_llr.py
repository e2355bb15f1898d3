"""Havtorn et al.'s LLR^{>k} detector on a tiny hierarchical VAE: the detector contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genood.models import build
from genood.ood import Statistics, parse
from genood.ood import build as build_detector
from genood.ood.base import Detector, NotFittedError
from genood.ood.llr import HierarchicalLLR

from .conftest import SHAPE, GaussianModel, make_blobs


@pytest.fixture(scope="module")
def hvae() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build("hvae", SHAPE, latent_channels=[2, 2, 2], hidden=8, num_mixtures=2)
    return model.eval()


def test_score_is_elbo_minus_l_above_k(hvae) -> None:
    images = make_blobs(20, seed=1)
    detector = HierarchicalLLR(hvae, k=2, seed=3, store=Statistics(batch_size=8)).fit(
        make_blobs(10, seed=2)
    )
    scores = detector.decision_function(images)
    assert scores.shape == (20,) and scores.dtype == np.float64
    torch.manual_seed(3)
    expected = []
    with torch.no_grad():
        for start in range(0, 20, 8):
            x = hvae.preprocess(torch.from_numpy(images[start : start + 8]), dequantize=False)
            expected.append(hvae.llr(x, 2).double().numpy())
    np.testing.assert_allclose(scores, np.concatenate(expected), rtol=1e-6, atol=1e-6)
    # seeded: the same scores again, and the global RNG is left alone
    state = torch.random.get_rng_state()
    np.testing.assert_array_equal(detector.decision_function(images), scores)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_meets_its_false_positive_rate(hvae) -> None:
    detector = HierarchicalLLR(hvae, k=1).fit(make_blobs(50, seed=2))
    detector.calibrate(make_blobs(300, seed=3), target_fpr=0.1)
    in_scores = detector.decision_function(make_blobs(300, seed=4))
    assert np.isfinite(in_scores).all()
    fpr = float(np.mean(detector.reject(in_scores)))
    assert fpr <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / len(in_scores))
    assert detector.predict(make_blobs(5, seed=5)).dtype == bool


def test_save_and_load_round_trip(hvae, tmp_path: Path) -> None:
    detector = HierarchicalLLR(hvae, k=3, samples=2, prior_mode=True, seed=11)
    detector.fit(make_blobs(20, seed=2)).calibrate(make_blobs(40, seed=3), target_fpr=0.25)
    detector.save(tmp_path / "llr")
    loaded = Detector.load(tmp_path / "llr", model=hvae)
    assert isinstance(loaded, HierarchicalLLR)
    assert (loaded.k, loaded.samples, loaded.prior_mode, loaded.seed) == (3, 2, True, 11)
    assert loaded.threshold_ == detector.threshold_
    images = make_blobs(6, seed=9)
    np.testing.assert_array_equal(
        loaded.decision_function(images), detector.decision_function(images)
    )
    other = build("hvae", SHAPE, latent_channels=[2, 2, 2], hidden=8, num_mixtures=2)
    other.load_state_dict(hvae.state_dict())
    with torch.no_grad():
        other.output_params.bias.add_(0.1)  # the same architecture, other weights
    with pytest.raises(ValueError, match="fingerprint"):
        Detector.load(tmp_path / "llr", model=other)


def test_bad_arguments_get_clear_errors(hvae) -> None:
    with pytest.raises(TypeError, match="hierarchical VAE"):
        HierarchicalLLR(GaussianModel())
    with pytest.raises(ValueError, match=r"k must be in 1\.\.3"):
        HierarchicalLLR(hvae, k=0)
    with pytest.raises(ValueError, match="samples"):
        HierarchicalLLR(hvae, samples=0)
    with pytest.raises(NotFittedError):
        HierarchicalLLR(hvae).decision_function(make_blobs(2, seed=1))


def test_built_by_name_with_its_k(hvae) -> None:
    # "llr:K" reaches the detector through the same parser as `genood detect --score`.
    assert parse("llr,llr:2,llr:1:mode") == ["llr", "llr:2", "llr:1:mode"]
    detectors = [build_detector(name, hvae) for name in parse("llr,llr:2,llr:1:mode")]
    assert [(d.k, d.prior_mode) for d in detectors] == [(1, False), (2, False), (1, True)]  # type: ignore[attr-defined]
    for bad in ("llr:0", "llr:two", "llr:1:mean", "typicality:2"):
        with pytest.raises(ValueError, match="option|llr:K"):
            parse(bad)
