"""Choi, Jang & Alemi (2018): the Watanabe-Akaike information criterion over an ensemble.

Choi, Jang & Alemi, "WAIC, but why? Generative ensembles for robust anomaly detection"
(arXiv:1810.01392). Independently trained models agree on in-distribution inputs and disagree
off it; WAIC penalises the mean log-likelihood by that disagreement:

    WAIC(x) = E_m[log p_m(x)] - Var_m[log p_m(x)]

(population variance over the ``M`` members). Here ``log p_m(x)`` is the log-probability of
the 8-bit image in nats, ``-D log(2) bpd_m(x)``, and the score is ``-WAIC(x) / (D log 2)``:

    s(x) = mean_m bpd_m(x) + D log(2) Var_m[bpd_m(x)],

in bits/dim units, higher = more anomalous (low WAIC = anomalous, as in Choi et al.). It is
``-WAIC`` divided by the constant ``D log 2``, so it ranks inputs exactly as WAIC does; the
variance is that of whole-image log-likelihoods, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from genood.models.base import LikelihoodModel
from genood.models.ensemble import Ensemble
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, model_pass


class WAIC(Detector):
    """Score ``-WAIC / (D log 2)`` over the members of an :class:`Ensemble` (``M >= 2``)."""

    name = "waic"
    summary = (
        "ensemble mean minus variance of the log-likelihood (Choi et al. 2018); the members "
        "must be equally trained"
    )
    unit = "bits/dim"
    needs = ("ensemble",)

    def __init__(
        self,
        ensemble: Ensemble | Sequence[LikelihoodModel],
        *,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        self.ensemble = ensemble if isinstance(ensemble, Ensemble) else Ensemble(ensemble)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.ensemble.image_shape

    def requirements(self) -> list[Requirement]:
        members = self.ensemble.members
        return [
            model_pass(cast(LikelihoodModel, member), f"ensemble.{m}")
            for m, member in enumerate(members)
        ]

    def member_bits_per_dim(self, X: Any) -> np.ndarray:
        """bits/dim of every member, shape ``(M, N)``."""
        stats = self._stats(X)
        count = len(self.ensemble.members)
        return np.stack([self.stat(stats, f"ensemble.{m}/bits_per_dim") for m in range(count)])

    def _score(self, stats: Stats) -> np.ndarray:
        bits = self.member_bits_per_dim(stats)
        nats_per_bit = self.ensemble.num_dims * math.log(2.0)
        return bits.mean(axis=0) + nats_per_bit * bits.var(axis=0)
