"""Bishop's procedure: the score is exactly the model's bits/dim."""

from __future__ import annotations

import numpy as np
import torch

from genood.ood import Likelihood, Statistics

from .conftest import check_detector


def test_score_is_the_models_bits_per_dim(model, data) -> None:
    detector = Likelihood(model, store=Statistics(batch_size=7)).fit(data["fit"])
    expected = model.bits_per_dim(torch.from_numpy(data["test"][:50])).detach().double().numpy()
    np.testing.assert_allclose(detector.decision_function(data["test"][:50]), expected, rtol=1e-5)


def test_detects_noise_and_meets_its_fpr(model, data) -> None:
    check_detector(Likelihood(model), data, ood=("noise", "constant"))


def test_threshold_is_a_bits_per_dim_level(model, data) -> None:
    detector = Likelihood(model).fit(data["fit"]).calibrate(data["val"], target_fpr=0.2)
    val_bits = model.bits_per_dim(torch.from_numpy(data["val"])).detach().double().numpy()
    assert np.mean(val_bits > detector.threshold_) <= 0.2
    assert detector.predict(data["noise"]).all()
