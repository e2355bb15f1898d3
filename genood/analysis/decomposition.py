"""Which term of the change of variables carries the likelihood gap (Nalisnick et al. 2019, §4).

A flow's log-density splits into the distribution term and the volume term,

    log p(x) = log p_z(f(x)) + log |det df/dx|,

and so do its bits/dim. With ``D`` sub-pixels and the 8-bit scale ``x = y/256 - 1/2``,

    bpd = -log p_z / (D log 2)  -  log|det| / (D log 2)  +  log2(256),

i.e. ``bpd = log_pz_bpd + logdet_bpd + 8``: each term's *contribution* to the bits/dim is
``-term / (D log 2)`` and the constant 8 bits cancels in every gap. A gap is OOD minus
in-distribution (negative: the OOD set is more likely). The term that *carries* the gap is the
one whose gap has the same sign as the total and the larger magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

# The two terms of a flow's log-density, as named by ``LikelihoodModel.log_prob_terms``.
TERMS = ("log_pz", "logdet")
TERM_NAMES = {"log_pz": "distribution term log p(z)", "logdet": "volume term log|det J|"}


def term_bits_per_dim(term_nats: np.ndarray, num_dims: int) -> np.ndarray:
    """A log-density term's contribution to bits/dim: ``-term / (D log 2)``.

    Args:
        term_nats: per-sample values of the term in nats.
        num_dims: ``D``, padding counted.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be a positive integer, got {num_dims}")
    return -np.asarray(term_nats, dtype=np.float64) / (num_dims * math.log(2.0))


@dataclass(frozen=True)
class Decomposition:
    """Per-term mean bits/dim contributions and gaps (OOD minus in-distribution).

    Attributes:
        in_means: ``{"log_pz": ..., "logdet": ...}`` mean contribution on the in-distribution set.
        ood_means: the same on the OOD set.
        gaps: ``ood_means - in_means`` per term, bits/dim.
        total_gap: sum of the term gaps (the bits/dim gap, the constant cancelling).
        carrier: the term that carries the gap (same sign as the total, larger magnitude), or
            ``"none"`` when the total gap is exactly zero.
        volume_constant: ``True`` when the volume term does not vary across samples (a
            constant-volume flow), so its gap is zero by construction.
    """

    in_means: dict[str, float]
    ood_means: dict[str, float]
    gaps: dict[str, float]
    total_gap: float
    carrier: str
    volume_constant: bool

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict for ``results.json``'s ``analyses``."""
        return asdict(self)

    def describe(self) -> str:
        """One line for a verdict table's "measured" column."""
        parts = ", ".join(f"{TERM_NAMES[t]} {self.gaps[t]:+.3f}" for t in TERMS)
        return f"gap {self.total_gap:+.3f} bits/dim = {parts}; carried by {self.carrier}"


def _terms(scores: Mapping[str, np.ndarray], who: str) -> dict[str, np.ndarray]:
    missing = [t for t in TERMS if t not in scores]
    if missing:
        raise KeyError(
            f"{who} needs per-sample {missing} in nats (a flow's log_prob_terms); "
            f"got keys {sorted(scores)}"
        )
    out = {t: np.asarray(scores[t], dtype=np.float64).reshape(-1) for t in TERMS}
    if out["log_pz"].shape != out["logdet"].shape or out["log_pz"].size == 0:
        raise ValueError(f"{who}: log_pz and logdet must be non-empty and of equal length")
    return out


def decompose(
    in_scores: Mapping[str, np.ndarray], ood_scores: Mapping[str, np.ndarray], num_dims: int
) -> Decomposition:
    """Split the bits/dim gap between the distribution and the volume term.

    Args:
        in_scores: per-sample ``log_pz`` and ``logdet`` (nats) on the in-distribution test set.
        ood_scores: the same on the OOD set.
        num_dims: ``D``, padding counted.
    """
    terms_in, terms_ood = _terms(in_scores, "in_scores"), _terms(ood_scores, "ood_scores")
    in_means = {t: float(term_bits_per_dim(terms_in[t], num_dims).mean()) for t in TERMS}
    ood_means = {t: float(term_bits_per_dim(terms_ood[t], num_dims).mean()) for t in TERMS}
    gaps = {t: ood_means[t] - in_means[t] for t in TERMS}
    total = sum(gaps.values())
    # Volume constant to float precision across *both* sets: a CV-Glow's log-det.
    logdets = np.concatenate([terms_in["logdet"], terms_ood["logdet"]])
    volume_constant = bool(np.ptp(logdets) <= 1e-6 * max(1.0, float(np.abs(logdets).max())))
    if total == 0.0:
        carrier = "none"
    else:
        same_sign = [t for t in TERMS if gaps[t] * total > 0]
        carrier = max(same_sign, key=lambda t: abs(gaps[t])) if same_sign else "none"
    return Decomposition(in_means, ood_means, gaps, float(total), carrier, volume_constant)


__all__ = ["TERMS", "TERM_NAMES", "Decomposition", "decompose", "term_bits_per_dim"]
