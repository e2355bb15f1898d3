"""Threshold-free and thresholded OOD metrics, OOD as the positive class.

Every function takes two 1-D arrays of scores where **higher = more anomalous**: ``in_scores``
of in-distribution inputs and ``out_scores`` of out-of-distribution ones. Conventions differ
between papers and toolkits (OpenOOD issue 206), so they are stated here and in every table:

* ``auroc``: area under the ROC curve with **OOD as the positive class**; 1 = perfect, 0.5 =
  chance, below 0.5 = the score ranks OOD inputs as *more* typical (the likelihood's failure
  on FashionMNIST vs MNIST).
* ``aupr_in``: average precision with the in-distribution set positive (scores negated).
* ``aupr_out``: average precision with OOD positive.
* ``fpr95``: the in-distribution false-positive rate (share wrongly rejected) at the first
  threshold where 95% of OOD inputs are caught (TPR >= 0.95).
* ``detection_accuracy``: at a given (calibrated) threshold, rejecting ``score > threshold``,
  ``(TNR + TPR) / 2``: the accuracy with equal priors, insensitive to the sets' sizes (as in
  Liang et al. 2018, evaluated at the threshold rather than maximised over it).

The curves come from scikit-learn. Infinite scores are allowed (a model overflowing on an
extreme input): they are mapped to values just beyond the finite ones, which keeps every rank
and so every metric. NaN is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

POSITIVE_CLASS = "ood"
CONVENTION = (
    "OOD is the positive class for AUROC, AUPR-out and FPR@95; AUPR-in takes the "
    "in-distribution set as positive; scores: higher = more anomalous"
)


def _checked(in_scores: Any, out_scores: Any) -> list[np.ndarray]:
    """Both score arrays as float64, or a clear error (not 1-D, empty, NaN)."""
    arrays = []
    for name, scores in (("in_scores", in_scores), ("out_scores", out_scores)):
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of scores, got shape {array.shape}")
        if len(array) == 0:
            raise ValueError(f"{name} is empty")
        if np.isnan(array).any():
            raise ValueError(f"{name} holds {int(np.isnan(array).sum())} NaN score(s)")
        arrays.append(array)
    return arrays


def _pair(in_scores: Any, out_scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate both score arrays and make infinite values finite, ranks unchanged."""
    arrays = _checked(in_scores, out_scores)
    pooled = np.concatenate(arrays)
    finite = pooled[np.isfinite(pooled)]
    if len(finite) < len(pooled):
        low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
        margin = max(1.0, high - low)
        arrays = [
            np.where(np.isposinf(a), high + margin, np.where(np.isneginf(a), low - margin, a))
            for a in arrays
        ]
    return arrays[0], arrays[1]


def _labelled(in_scores: np.ndarray, out_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    return labels, np.concatenate([in_scores, out_scores])


def auroc(in_scores: Any, out_scores: Any) -> float:
    """Area under the ROC curve, OOD positive: ``P(s_out > s_in) + P(s_out = s_in) / 2``."""
    labels, scores = _labelled(*_pair(in_scores, out_scores))
    return float(roc_auc_score(labels, scores))


def aupr_in(in_scores: Any, out_scores: Any) -> float:
    """Average precision with the in-distribution set as the positive class."""
    in_scores, out_scores = _pair(in_scores, out_scores)
    labels, scores = _labelled(in_scores, out_scores)
    return _probability(average_precision_score(1.0 - labels, -scores))


def aupr_out(in_scores: Any, out_scores: Any) -> float:
    """Average precision with OOD as the positive class."""
    labels, scores = _labelled(*_pair(in_scores, out_scores))
    return _probability(average_precision_score(labels, scores))


def _probability(value: float) -> float:
    """A precision average clipped to [0, 1]: scikit-learn sums recall steps times precisions,
    and on a perfect separation the sum can round to 1.0000000000000002, which results.json's
    schema (rightly) refuses."""
    return float(min(max(float(value), 0.0), 1.0))


def fpr_at_tpr(in_scores: Any, out_scores: Any, tpr: float = 0.95) -> float:
    """In-distribution false-positive rate at the first threshold catching ``tpr`` of OOD."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    labels, scores = _labelled(*_pair(in_scores, out_scores))
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, tpr, side="left")])


def fpr95(in_scores: Any, out_scores: Any) -> float:
    """FPR@95: the share of in-distribution inputs rejected when 95% of OOD inputs are caught."""
    return fpr_at_tpr(in_scores, out_scores, 0.95)


def rates_at_threshold(in_scores: Any, out_scores: Any, threshold: float) -> dict[str, float]:
    """``fpr`` (in-distribution rejected) and ``tpr`` (OOD rejected) when rejecting ``s > t``."""
    in_scores, out_scores = _checked(in_scores, out_scores)  # raw: inf stays above any t
    return {
        "fpr": float(np.mean(in_scores > threshold)),
        "tpr": float(np.mean(out_scores > threshold)),
    }


def detection_accuracy(in_scores: Any, out_scores: Any, threshold: float) -> float:
    """``(TNR + TPR) / 2`` when rejecting ``score > threshold`` (equal-prior accuracy)."""
    rates = rates_at_threshold(in_scores, out_scores, threshold)
    return 0.5 * (1.0 - rates["fpr"] + rates["tpr"])


def auroc_interval(
    in_scores: Any, out_scores: Any, n_bootstrap: int, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval for the AUROC.

    Both sets are resampled with replacement, each keeping its size (a stratified bootstrap),
    ``n_bootstrap`` times. A resample is a count per original score, so each resampled AUROC
    is computed from one sort of the in-distribution scores in ``O(n)`` (ties count a half, as
    in :func:`auroc`) instead of a new ROC curve: the same resamples and values as scoring
    every resample with scikit-learn, about fifty times faster (6,000 + 2,000 scores, 200
    resamples: 0.010 s instead of 0.40 s).
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be positive, got {n_bootstrap}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    in_scores, out_scores = _pair(in_scores, out_scores)
    n_in, n_out = len(in_scores), len(out_scores)
    order = np.argsort(in_scores, kind="stable")
    ranked = in_scores[order]
    below = np.searchsorted(ranked, out_scores, side="left")  # in-scores < each out-score
    not_above = np.searchsorted(ranked, out_scores, side="right")  # in-scores <= it
    rng = np.random.default_rng(seed)
    values = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        # the draws of rng.choice(in_scores, n_in) and rng.choice(out_scores, n_out)
        in_counts = np.bincount(rng.integers(0, n_in, n_in), minlength=n_in)[order]
        out_counts = np.bincount(rng.integers(0, n_out, n_out), minlength=n_out)
        cumulative = np.concatenate([[0], np.cumsum(in_counts)])
        wins = cumulative[below] + 0.5 * (cumulative[not_above] - cumulative[below])
        values[b] = float(np.dot(out_counts, wins)) / (n_in * n_out)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def evaluate(
    in_scores: Any,
    out_scores: Any,
    threshold: float | None = None,
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Every metric in one dictionary (what ``genood detect`` writes per score).

    Returns:
        ``auroc``, ``aupr_in``, ``aupr_out``, ``fpr95``, ``n_in``, ``n_out``; with a threshold
        also ``threshold``, ``fpr``, ``tpr`` and ``detection_accuracy`` at it; with
        ``bootstrap > 0`` also ``auroc_ci = [low, high]`` and ``auroc_ci_level``.
    """
    result: dict[str, Any] = {
        "auroc": auroc(in_scores, out_scores),
        "aupr_in": aupr_in(in_scores, out_scores),
        "aupr_out": aupr_out(in_scores, out_scores),
        "fpr95": fpr95(in_scores, out_scores),
        "n_in": len(in_scores),
        "n_out": len(out_scores),
    }
    if threshold is not None:
        rates = rates_at_threshold(in_scores, out_scores, threshold)
        result.update(
            threshold=float(threshold),
            fpr=rates["fpr"],
            tpr=rates["tpr"],
            detection_accuracy=0.5 * (1.0 - rates["fpr"] + rates["tpr"]),
        )
    if bootstrap:
        result["auroc_ci"] = list(auroc_interval(in_scores, out_scores, bootstrap, level, seed))
        result["auroc_ci_level"] = level
    return result
