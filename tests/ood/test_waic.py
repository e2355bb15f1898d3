"""Choi et al.'s WAIC over an ensemble."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genood.models.ensemble import Ensemble
from genood.ood import WAIC, Likelihood

from .conftest import check_detector


def test_score_is_minus_waic_in_bits_per_dim(members, data) -> None:
    detector = WAIC(members).fit(data["fit"])
    images = data["test"][:25]
    bits = np.stack([Likelihood(m).fit(images).decision_function(images) for m in members])
    log_probs = -bits * 64 * math.log(2)  # nats of each 8-bit image, D = 64
    waic = log_probs.mean(axis=0) - log_probs.var(axis=0)
    np.testing.assert_allclose(detector.decision_function(images), -waic / (64 * math.log(2)))


def test_detects_and_meets_its_fpr(members, data) -> None:
    check_detector(WAIC(Ensemble(members)), data, ood=("noise", "constant"))


def test_disagreement_raises_the_score(members, data) -> None:
    """Same mean bits/dim, more disagreement: a higher score (the variance penalty)."""
    detector = WAIC(members).fit(data["fit"])
    bits = detector.member_bits_per_dim(data["noise"][:50])
    assert bits.shape == (3, 50)
    assert np.all(detector.decision_function(data["noise"][:50]) >= bits.mean(axis=0))


def test_needs_two_members(model) -> None:
    with pytest.raises(ValueError, match="at least 2 members"):
        WAIC([model])
