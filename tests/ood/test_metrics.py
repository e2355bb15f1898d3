"""Metrics against hand-made score sets and against scikit-learn; the positive-class convention."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from genood.ood import metrics

IN = np.array([0.1, 0.2, 0.3, 0.4])
OUT = np.array([0.6, 0.7, 0.8, 0.9])


def test_perfectly_separable() -> None:
    assert metrics.auroc(IN, OUT) == 1.0
    assert metrics.aupr_in(IN, OUT) == 1.0
    assert metrics.aupr_out(IN, OUT) == 1.0
    assert metrics.fpr95(IN, OUT) == 0.0


def test_reversed_scores_are_the_worst_case() -> None:
    assert metrics.auroc(OUT, IN) == 0.0
    assert metrics.fpr95(OUT, IN) == 1.0
    # precision is 1/2 at the first recall step, then falls: AP = sum_k P(k)/n over the ranks
    expected = np.mean([1 / 5, 2 / 6, 3 / 7, 4 / 8])
    assert metrics.aupr_out(OUT, IN) == pytest.approx(expected)
    assert metrics.aupr_in(OUT, IN) == pytest.approx(expected)


def test_inseparable_identical_scores() -> None:
    same = np.full(10, 3.0)
    assert metrics.auroc(same, same) == 0.5
    assert metrics.aupr_out(same, same) == 0.5  # the positives' share
    assert metrics.fpr95(same, same) == 1.0


def test_ood_is_the_positive_class() -> None:
    """Swapping the roles reflects AUROC: the metric is not symmetric in its arguments."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 200), rng.normal(1, 1, 300)
    assert metrics.auroc(a, b) > 0.5
    assert metrics.auroc(a, b) == pytest.approx(1.0 - metrics.auroc(b, a))
    assert metrics.aupr_in(a, b) == pytest.approx(metrics.aupr_out(-b, -a))
    assert metrics.POSITIVE_CLASS == "ood"


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_scikit_learn_on_random_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    in_scores = rng.normal(0, 1, 500).round(1)  # rounding makes ties
    out_scores = rng.normal(0.7, 1.3, 300).round(1)
    labels = np.r_[np.zeros(500), np.ones(300)]
    scores = np.r_[in_scores, out_scores]
    assert metrics.auroc(in_scores, out_scores) == pytest.approx(roc_auc_score(labels, scores))
    assert metrics.aupr_out(in_scores, out_scores) == pytest.approx(
        average_precision_score(labels, scores)
    )
    assert metrics.aupr_in(in_scores, out_scores) == pytest.approx(
        average_precision_score(1 - labels, -scores)
    )
    # FPR@95 by brute force over every threshold "reject s >= t"
    candidates = [
        np.mean(in_scores >= t) for t in np.unique(scores) if np.mean(out_scores >= t) >= 0.95
    ]
    assert metrics.fpr95(in_scores, out_scores) == pytest.approx(min(candidates))


def test_threshold_rates_and_detection_accuracy() -> None:
    rates = metrics.rates_at_threshold(IN, OUT, 0.35)
    assert rates == {"fpr": 0.25, "tpr": 1.0}
    assert metrics.detection_accuracy(IN, OUT, 0.35) == pytest.approx(0.5 * (0.75 + 1.0))
    assert metrics.detection_accuracy(IN, OUT, 0.5) == 1.0


def test_infinite_scores_keep_their_rank() -> None:
    out_scores = np.array([0.6, np.inf, np.inf])
    assert metrics.auroc(IN, out_scores) == 1.0
    assert metrics.auroc(np.r_[IN, np.inf], out_scores) == pytest.approx(
        roc_auc_score(np.r_[np.zeros(5), np.ones(3)], [0.1, 0.2, 0.3, 0.4, 9, 0.6, 9, 9])
    )
    # an infinite score is above any threshold
    assert metrics.rates_at_threshold(IN, out_scores, 1e9)["tpr"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("in_scores", "message"),
    [(np.array([]), "empty"), (np.array([1.0, np.nan]), "NaN"), (np.ones((2, 2)), "1-D")],
)
def test_bad_scores_are_refused(in_scores: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.auroc(in_scores, OUT)


def test_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    in_scores, out_scores = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    low, high = metrics.auroc_interval(in_scores, out_scores, n_bootstrap=100, seed=0)
    value = metrics.auroc(in_scores, out_scores)
    assert low < value < high
    assert 0.02 < high - low < 0.15  # ~ 4 standard errors of an AUROC on 300 + 300 scores
    assert metrics.auroc_interval(in_scores, out_scores, 100, seed=0) == (low, high)


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_interval_scores_the_same_resamples_as_scikit_learn(ties: bool) -> None:
    """The counting form gives exactly the intervals of resampling the scores themselves
    (``rng.choice``) and scoring each resample with ``roc_auc_score``: ties count a half."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    in_scores, out_scores = rng.normal(size=400), rng.normal(0.4, 1.0, 150)
    if ties:
        in_scores, out_scores = np.round(in_scores), np.round(out_scores)
    draws = np.random.default_rng(7)
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    values = [
        roc_auc_score(labels, np.r_[draws.choice(in_scores, 400), draws.choice(out_scores, 150)])
        for _ in range(50)
    ]
    expected = np.quantile(values, [0.05, 0.95])
    low, high = metrics.auroc_interval(in_scores, out_scores, 50, level=0.9, seed=7)
    assert (low, high) == pytest.approx(tuple(expected), abs=1e-12)


def test_evaluate_collects_everything() -> None:
    result = metrics.evaluate(IN, OUT, threshold=0.5, bootstrap=20)
    assert result["auroc"] == 1.0
    assert result["fpr95"] == 0.0
    assert result["detection_accuracy"] == 1.0
    assert result["n_in"] == 4 and result["n_out"] == 4
    assert len(result["auroc_ci"]) == 2
    assert "threshold" not in metrics.evaluate(IN, OUT)


def test_average_precision_never_rounds_above_one() -> None:
    # a perfect separation whose recall steps sum to 1.0000000000000002 in scikit-learn
    rng = np.random.default_rng(0)
    for _ in range(3000):
        n, m = rng.integers(2, 40, 2)
        in_scores, out_scores = rng.normal(size=n), rng.normal(size=m) + rng.uniform(0, 8)
        for value in (
            metrics.aupr_out(in_scores, out_scores),
            metrics.aupr_in(in_scores, out_scores),
        ):
            assert 0.0 <= value <= 1.0, (n, m, value)
    assert metrics.aupr_out(np.zeros(27), np.ones(20)) == 1.0
