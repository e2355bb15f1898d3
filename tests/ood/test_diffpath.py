"""DiffPath (Heng et al. 2024) on a diffusion model with an exact denoiser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from genood.models.diffusion_ood import path_statistics
from genood.ood import build, metrics, parse
from genood.ood.diffpath import DiffPath

from .conftest import GaussianModel, make_blobs
from .diffusion_oracle import gaussian_images, oracle_model


def test_score_is_minus_the_log_density_of_the_curvature() -> None:
    model = oracle_model()
    fit, test = gaussian_images(80, 1.0, seed=1), gaussian_images(10, 2.0, seed=2)
    detector = DiffPath(model, steps=6).fit(fit)
    kde = gaussian_kde(path_statistics(model, fit, 6)["curvature"])
    expected = -kde.logpdf(path_statistics(model, test, 6)["curvature"])
    np.testing.assert_allclose(detector.decision_function(test), expected, rtol=1e-9)


@pytest.mark.parametrize("spec", ["diffpath", "diffpath:2d"])
def test_outliers_score_higher(spec: str) -> None:
    detector = build(spec, oracle_model()).fit(gaussian_images(200, 1.0, seed=1))
    assert detector.label == spec
    scores_in = detector.decision_function(gaussian_images(200, 1.0, seed=3))
    scores_out = detector.decision_function(gaussian_images(200, 2.5, seed=4))
    assert metrics.auroc(scores_in, scores_out) > 0.9


def test_bad_settings_and_models_are_refused() -> None:
    with pytest.raises(ValueError, match="diffpath:2d"):
        parse("diffpath:3d")
    with pytest.raises(TypeError, match="needs a diffusion model"):
        DiffPath(GaussianModel().fit(make_blobs(50, seed=0)))
    with pytest.raises(ValueError, match="at least 2 DDIM steps"):
        DiffPath(oracle_model(), steps=1)
