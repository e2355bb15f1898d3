"""Property-based checks of the metric conventions (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genood.ood import metrics

scores = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(in_scores=scores, out_scores=scores)
def test_swapping_the_sets_mirrors_auroc(in_scores: list[float], out_scores: list[float]) -> None:
    a, b = np.asarray(in_scores), np.asarray(out_scores)
    assert np.isclose(metrics.auroc(a, b) + metrics.auroc(b, a), 1.0)


@settings(max_examples=60, deadline=None)
@given(in_scores=scores, out_scores=scores, shift=st.floats(min_value=-1e3, max_value=1e3))
def test_metrics_ignore_a_common_shift(
    in_scores: list[float], out_scores: list[float], shift: float
) -> None:
    a, b = np.asarray(in_scores), np.asarray(out_scores)
    a_shifted, b_shifted = a + shift, b + shift
    # A shift can merge values that were distinct only in the last bits: require exact ties.
    if len(np.unique(np.r_[a, b])) != len(np.unique(np.r_[a_shifted, b_shifted])):
        return
    assert np.isclose(metrics.auroc(a, b), metrics.auroc(a_shifted, b_shifted))
    assert np.isclose(metrics.fpr95(a, b), metrics.fpr95(a_shifted, b_shifted))


@settings(max_examples=40, deadline=None)
@given(in_scores=scores, out_scores=scores)
def test_all_metrics_lie_in_the_unit_interval(
    in_scores: list[float], out_scores: list[float]
) -> None:
    a, b = np.asarray(in_scores), np.asarray(out_scores)
    for fn in (metrics.auroc, metrics.aupr_in, metrics.aupr_out, metrics.fpr95):
        assert 0.0 <= fn(a, b) <= 1.0
