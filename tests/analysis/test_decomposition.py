"""Splitting the bits/dim gap between log p(z) and the log-det."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genood.analysis.decomposition import decompose, term_bits_per_dim

D = 64


def _scores(log_pz: float, logdet: float, n: int, rng: np.random.Generator, cv: bool = False):
    return {
        "log_pz": log_pz + rng.normal(0, 1, n),
        "logdet": np.full(n, logdet) if cv else logdet + rng.normal(0, 1, n),
    }


def test_term_bits_sum_to_bits_per_dim() -> None:
    log_pz, logdet = np.array([-100.0, -80.0]), np.array([30.0, 10.0])
    log_prob = log_pz + logdet
    bpd = -(log_prob - D * math.log(256)) / (D * math.log(2))
    total = term_bits_per_dim(log_pz, D) + term_bits_per_dim(logdet, D) + 8.0
    np.testing.assert_allclose(total, bpd)


def test_distribution_term_carries_gap() -> None:
    rng = np.random.default_rng(0)
    # OOD gets +64 nats of log p(z) (-1 bit/dim / ln2 ...) and slightly less volume.
    result = decompose(_scores(-200, 20, 500, rng), _scores(-136, 15, 400, rng), num_dims=D)
    assert result.carrier == "log_pz"
    assert result.gaps["log_pz"] == pytest.approx(-64 / (D * math.log(2)), abs=0.01)
    assert result.gaps["logdet"] == pytest.approx(5 / (D * math.log(2)), abs=0.01)
    assert result.total_gap == pytest.approx(sum(result.gaps.values()))
    assert not result.volume_constant
    assert "carried by log_pz" in result.describe()
    assert result.to_dict()["carrier"] == "log_pz"


def test_volume_term_carries_gap() -> None:
    rng = np.random.default_rng(1)
    result = decompose(_scores(-200, 20, 300, rng), _scores(-205, 60, 300, rng), num_dims=D)
    assert result.carrier == "logdet" and result.total_gap < 0


def test_constant_volume_is_detected() -> None:
    rng = np.random.default_rng(2)
    result = decompose(
        _scores(-200, 7.0, 100, rng, cv=True), _scores(-150, 7.0, 100, rng, cv=True), D
    )
    assert result.volume_constant and result.gaps["logdet"] == 0.0
    assert result.carrier == "log_pz"


def test_missing_terms_are_named() -> None:
    with pytest.raises(KeyError, match="logdet"):
        decompose({"log_pz": np.zeros(3)}, {"log_pz": np.zeros(3), "logdet": np.zeros(3)}, D)
    with pytest.raises(ValueError, match="num_dims"):
        term_bits_per_dim(np.zeros(3), 0)
