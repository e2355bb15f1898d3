"""Per-data-set summaries for results.json's datasets table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genood.analysis.histograms import bpd_gap, dataset_summary, dataset_table


def test_summary_and_terms() -> None:
    scores = {
        "bits_per_dim": np.array([1.0, 2.0, 3.0]),
        "log_pz": np.full(3, -64 * math.log(2)),
        "logdet": np.zeros(3),
    }
    row = dataset_summary(scores, num_dims=64)
    assert row == {
        "bpd_mean": 2.0,
        "bpd_std": 1.0,
        "n": 3,
        "log_pz_bpd_mean": pytest.approx(1.0),
        "logdet_bpd_mean": 0.0,
    }
    table = dataset_table({"a:test": scores, "b:test": {"bits_per_dim": np.ones(2)}}, 64)
    assert list(table) == ["a:test", "b:test"] and "log_pz_bpd_mean" not in table["b:test"]


def test_gap_sign_and_bad_input() -> None:
    assert bpd_gap(np.array([3.0, 3.0]), np.array([2.0])) == -1.0
    with pytest.raises(ValueError, match="non-finite"):
        bpd_gap(np.array([np.nan]), np.ones(2))
    with pytest.raises(KeyError, match="bits_per_dim"):
        dataset_summary({"log_prob": np.ones(2)}, 4)
