"""Graham et al.'s multi-level reconstruction score on a diffusion model with an exact denoiser."""

from __future__ import annotations

import numpy as np
import pytest

from genood.models.diffusion_ood import reconstruction_errors
from genood.ood import build, metrics, parse
from genood.ood.reconstruction import DiffusionReconstruction

from .conftest import GaussianModel, make_blobs
from .diffusion_oracle import gaussian_images, oracle_model


def test_score_is_the_mean_z_score_of_the_errors() -> None:
    model = oracle_model()
    fit, test = gaussian_images(60, 1.0, seed=1), gaussian_images(10, 2.0, seed=2)
    detector = DiffusionReconstruction(model, levels=(0.5, 0.7), steps=6, seed=3).fit(fit)
    ref = reconstruction_errors(model, fit, (0.5, 0.7), 6, 3)
    errors = reconstruction_errors(model, test, (0.5, 0.7), 6, 3)
    expected = ((errors - ref.mean(0)) / ref.std(0, ddof=1)).mean(1)
    np.testing.assert_allclose(detector.decision_function(test), expected, rtol=1e-9)


def test_outliers_score_higher_and_the_threshold_holds() -> None:
    detector = build("reconstruction", oracle_model())
    detector.fit(gaussian_images(200, 1.0, seed=1)).calibrate(
        gaussian_images(200, 1.0, seed=2), target_fpr=0.1
    )
    inliers, outliers = gaussian_images(200, 1.0, seed=3), gaussian_images(200, 2.5, seed=4)
    scores_in = detector.decision_function(inliers)
    assert metrics.auroc(scores_in, detector.decision_function(outliers)) > 0.9
    assert np.mean(detector.reject(scores_in)) < 0.1 + 3 * np.sqrt(0.09 / 200)


def test_a_model_without_a_denoiser_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a diffusion model"):
        DiffusionReconstruction(GaussianModel().fit(make_blobs(50, seed=0)))
    with pytest.raises(ValueError, match="noise levels"):
        DiffusionReconstruction(oracle_model(), levels=(0.0,))
    assert parse("reconstruction") == ["reconstruction"]
