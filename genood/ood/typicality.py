"""Nalisnick et al. (2019b): a typicality test, for single inputs and for batches.

Nalisnick, Matsukawa, Teh & Lakshminarayanan, "Detecting out-of-distribution inputs to deep
generative models using typicality" (arXiv:1906.02994). In high dimensions the samples of a
model concentrate in its *typical set*, where ``-log p(x) / D`` is close to the entropy rate,
not where the density is highest. The test estimates that typical value on held-out training
data,

    h = mean_i bpd(x_i),

and flags a batch ``{x_1..x_M}`` whose mean bits/dim is far from it on *either* side:

    s({x_m}) = | (1/M) sum_m bpd(x_m) - h |.

The threshold ``epsilon_M`` for batches of size ``M`` is bootstrapped: draw many batches of ``M``
held-out in-distribution images with replacement and take the conformal ``1 - alpha`` quantile
of their scores. ``M = 1`` is the single-sample case, calibrated exactly like every detector.
Being two-sided, the score also rejects inputs that are *too likely* (constant images, and
MNIST for a FashionMNIST model), which the raw likelihood cannot.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector, conformal_threshold
from genood.ood.statistics import Requirement, Statistics, Stats, model_pass
from genood.ood.validation import validate_images


class Typicality(Detector):
    """Score = ``|bpd(x) - h|``, ``h`` the mean bits/dim of held-out in-distribution images.

    Attributes:
        typical_: ``h`` in bits/dim, set by :meth:`fit`.
        batch_thresholds_: ``{M: epsilon_M}`` set by :meth:`calibrate_batches`.
    """

    name = "typicality"
    summary = "|bits/dim - mean held-out bits/dim|, two-sided (Nalisnick et al. 2019b)"
    unit = "bits/dim"

    def __init__(
        self,
        model: LikelihoodModel,
        *,
        n_bootstrap: int = 10000,
        seed: int = 0,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if n_bootstrap < 1:
            raise ValueError(f"n_bootstrap must be positive, got {n_bootstrap}")
        self.model = model
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.typical_: float | None = None
        self.batch_thresholds_: dict[int, float] = {}

    def requirements(self) -> list[Requirement]:
        return [model_pass(self.model)]

    def _fit(self, stats: Stats) -> None:
        self.typical_ = float(np.mean(self.stat(stats, "model/bits_per_dim")))

    def _score(self, stats: Stats) -> np.ndarray:
        assert self.typical_ is not None
        return np.abs(self.stat(stats, "model/bits_per_dim") - self.typical_)

    def _bits(self, images: np.ndarray) -> np.ndarray:
        return self.stat(self.statistics(images), "model/bits_per_dim")

    # ------------------------------------------------------------- batches of M
    def score_batches(self, images: Any, batch_size_m: int) -> np.ndarray:
        """Scores of consecutive batches of ``M`` images: ``|mean bpd of the batch - h|``.

        Raises:
            ValueError: when the number of images is not a multiple of ``M``.
        """
        self._require_fitted("score_batches")
        checked = self._check_batches(images, batch_size_m)
        bits = self._bits(checked)
        assert self.typical_ is not None
        return np.abs(bits.reshape(-1, batch_size_m).mean(axis=1) - self.typical_)

    def calibrate_batches(
        self, val_images: Any, batch_size_m: int, target_fpr: float = 0.05
    ) -> Self:
        """Bootstrap ``epsilon_M`` so that at most ``target_fpr`` of in-distribution batches fail.

        ``n_bootstrap`` batches of ``M`` images are drawn with replacement from ``val_images``
        (held-out in-distribution data, disjoint from the images given to :meth:`fit`).
        """
        self._require_fitted("calibrate_batches")
        if batch_size_m < 1:
            raise ValueError(f"batch size M must be positive, got {batch_size_m}")
        images = validate_images(val_images, self.image_shape, "Typicality.calibrate_batches")
        bits = self._bits(images)
        rng = np.random.default_rng(self.seed)
        draws = rng.integers(0, len(bits), size=(self.n_bootstrap, batch_size_m))
        assert self.typical_ is not None
        scores = np.abs(bits[draws].mean(axis=1) - self.typical_)
        self.batch_thresholds_[int(batch_size_m)] = conformal_threshold(scores, target_fpr)
        return self

    def predict_batches(self, images: Any, batch_size_m: int) -> np.ndarray:
        """Boolean per consecutive batch of ``M``: ``True`` = the batch is out-of-distribution."""
        if batch_size_m not in self.batch_thresholds_:
            known = sorted(self.batch_thresholds_)
            raise ValueError(
                f"no threshold for batches of M={batch_size_m} (calibrated: {known}); call "
                f"calibrate_batches(val_images, {batch_size_m}) first"
            )
        return ~(self.score_batches(images, batch_size_m) <= self.batch_thresholds_[batch_size_m])

    def _check_batches(self, images: Any, batch_size_m: int) -> np.ndarray:
        if batch_size_m < 1:
            raise ValueError(f"batch size M must be positive, got {batch_size_m}")
        checked = validate_images(images, self.image_shape, "Typicality.score_batches")
        if len(checked) % batch_size_m:
            raise ValueError(
                f"{len(checked)} images do not split into batches of M={batch_size_m}; "
                "pass a multiple of M"
            )
        return checked

    # ------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        thresholds = {str(m): t for m, t in self.batch_thresholds_.items()}
        return {"typical": self.typical_, "batch_thresholds": thresholds}, {}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.typical_ = values["typical"]
        self.batch_thresholds_ = {int(m): t for m, t in values["batch_thresholds"].items()}
