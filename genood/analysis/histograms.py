"""Per-data-set bits/dim summaries and gaps: the numbers behind the paper's Figure 1.

A *gap* is always **OOD minus in-distribution** mean bits/dim, so a negative gap means the OOD
set gets fewer bits, i.e. higher likelihood: the phenomenon of Nalisnick et al. (2019).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from genood.analysis.decomposition import term_bits_per_dim


def _as_1d(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty; expected per-sample scores")
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(f"{name} has {bad} non-finite values (NaN or inf) of {array.size}")
    return array


def bpd_gap(in_bpd: np.ndarray, ood_bpd: np.ndarray) -> float:
    """``mean(ood_bpd) - mean(in_bpd)`` in bits/dim; negative when OOD data are *more* likely."""
    return float(_as_1d(ood_bpd, "ood_bpd").mean() - _as_1d(in_bpd, "in_bpd").mean())


def dataset_summary(scores: Mapping[str, np.ndarray], num_dims: int) -> dict[str, float | int]:
    """One row of ``results.json``'s ``datasets`` table from :func:`score_images` output.

    Args:
        scores: per-sample arrays with at least ``bits_per_dim``; when ``log_pz`` and ``logdet``
            (nats) are present, their bits/dim contributions are added (see
            :func:`~genood.analysis.decomposition.term_bits_per_dim`).
        num_dims: ``D``, the number of sub-pixels the model sees (padding counted).

    Returns:
        ``{"bpd_mean", "bpd_std", "n"}`` and optionally ``"log_pz_bpd_mean"``,
        ``"logdet_bpd_mean"``.
    """
    if "bits_per_dim" not in scores:
        raise KeyError(f"scores need a 'bits_per_dim' array, got keys {sorted(scores)}")
    bpd = _as_1d(scores["bits_per_dim"], "bits_per_dim")
    row: dict[str, float | int] = {
        "bpd_mean": float(bpd.mean()),
        "bpd_std": float(bpd.std(ddof=1)) if bpd.size > 1 else 0.0,
        "n": int(bpd.size),
    }
    for term in ("log_pz", "logdet"):
        if term in scores:
            values = term_bits_per_dim(_as_1d(scores[term], term), num_dims)
            row[f"{term}_bpd_mean"] = float(values.mean())
    return row


def dataset_table(
    scores_by_set: Mapping[str, Mapping[str, np.ndarray]], num_dims: int
) -> dict[str, dict[str, float | int]]:
    """``{"<name>:<split>": dataset_summary(...)}`` for every scored set, in the given order."""
    return {label: dataset_summary(scores, num_dims) for label, scores in scores_by_set.items()}


__all__ = ["bpd_gap", "dataset_summary", "dataset_table"]
