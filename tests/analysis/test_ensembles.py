"""Ensemble gap and AUROC from members' bits/dim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from genood.analysis.ensembles import ensemble_analysis, ensemble_bits_per_dim


def test_mean_and_mixture() -> None:
    bpd = np.array([[1.0, 2.0], [3.0, 2.0]])
    np.testing.assert_allclose(ensemble_bits_per_dim(bpd, 4, "mean"), [2.0, 2.0])
    mix = ensemble_bits_per_dim(bpd, 4, "mixture")
    scale = 4 * math.log(2)
    expected = -(logsumexp(-bpd * scale, axis=0) - math.log(2)) / scale
    np.testing.assert_allclose(mix, expected)
    # A mixture is at least as likely as its worst member and at most as its best.
    assert np.all(mix <= bpd.max(axis=0)) and np.all(mix >= bpd.min(axis=0))
    np.testing.assert_allclose(mix[1], 2.0)
    with pytest.raises(ValueError, match="how"):
        ensemble_bits_per_dim(bpd, 4, "median")


def test_analysis_prefers_ood() -> None:
    rng = np.random.default_rng(0)
    members = 4
    in_bpd = 3.0 + rng.normal(0, 0.2, (members, 300)) + rng.normal(0, 0.05, (members, 1))
    ood_bpd = 2.6 + rng.normal(0, 0.2, (members, 200))
    result = ensemble_analysis(in_bpd, ood_bpd, num_dims=64)
    assert result.members == members and len(result.member_aurocs) == members
    assert result.ensemble_gap < 0 and result.mixture_gap < 0
    assert result.ensemble_auroc < 0.2  # OOD positive, bits/dim as score: OOD looks normal
    assert result.ensemble_gap == pytest.approx(ood_bpd.mean() - in_bpd.mean())
    assert "ensemble of 4" in result.describe()
    assert result.to_dict()["members"] == 4


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="members, samples"):
        ensemble_analysis(np.ones(3), np.ones((1, 3)), 4)
    with pytest.raises(ValueError, match="members"):
        ensemble_analysis(np.ones((2, 3)), np.ones((3, 3)), 4)
