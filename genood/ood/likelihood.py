"""Bishop (1994): reject what the density model finds unlikely.

Bishop, "Novelty detection and neural network validation" (IEE Proc. Vision, Image and Signal
Processing, 1994): estimate the input density ``p(x)`` on training data and flag an input as
novel when ``p(x)`` falls below a threshold set on held-out in-distribution data. Here the
score is the model's bits/dim,

    s(x) = -(log p(x) + D log_scale) / (D log 2),

a decreasing function of ``log p(x)``, so that higher = more anomalous, and the threshold is
the split-conformal one of :mod:`genood.ood.base`. Nalisnick et al. (2019a) show why this fails
on FashionMNIST vs MNIST: the OOD set gets *higher* likelihood, so expect AUROC < 0.5 there.
"""

from __future__ import annotations

import numpy as np

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, model_pass


class Likelihood(Detector):
    """Score = bits/dim under ``model`` (higher = less likely = more anomalous)."""

    name = "likelihood"
    summary = "bits/dim under the model (Bishop 1994)"
    unit = "bits/dim"

    def __init__(self, model: LikelihoodModel, *, store: Statistics | None = None) -> None:
        super().__init__(store=store)
        self.model = model

    def requirements(self) -> list[Requirement]:
        return [model_pass(self.model)]

    def _score(self, stats: Stats) -> np.ndarray:
        return self.stat(stats, "model/bits_per_dim")
