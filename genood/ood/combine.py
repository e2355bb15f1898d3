"""Several scores at once: flag an input that is extreme on *any* of them.

Each score catches its own kind of outlier and misses others: the input-complexity score of
Serra et al. (2020) is one-sided and lets through inputs that are both complex and badly
modelled (noise, under a weakly trained model), the two-sided typicality test of Nalisnick et
al. (2019b) misses MNIST under a FashionMNIST model, which input complexity catches. A union
of tests keeps what each catches. Scores live on different scales, so each component ``k`` is
standardised robustly on held-out in-distribution images,

    z_k(x) = (s_k(x) - median_k) / (1.4826 MAD_k),

and the combined score is ``max_k z_k(x)``, higher = more anomalous: "how many robust standard
deviations beyond the in-distribution bulk is the most extreme component". The threshold is
calibrated on this combined score like any other (split-conformal), so the target FPR holds
for the union as a whole, not per component.

:meth:`Combined.fit` fits the components and measures the medians and scales on the same
images, unless a component's scores on its own fitting images are biased (a kernel density
estimate, :class:`~genood.ood.dose.DensityOfStates`): then the components are fitted on one
half and standardised on the other. (A typical value, one mean over many images, is not
biased enough to matter.)

``method`` chooses how the components meet (spec ``A+B@METHOD``):

* ``max-z`` (default, ``A+B``): the largest robust z-score, as above;
* ``fisher``: Fisher's method on the components' conformal p-values,
  ``-2 sum_k log p_k(x)`` with ``p_k(x) = (1 + #{r in R_k : r >= s_k(x)}) / (|R_k| + 1)`` and
  ``R_k`` the component's scores on the held-out reference images (Bergamin et al. 2022 combine
  a typicality test and a score test this way); every component counts, so several moderate
  deviations add up;
* ``simes``: Simes' combination, ``-log min_k (K p_(k) / k)`` over the sorted p-values, which
  stays valid under positive dependence and is driven by the most significant components.

The components' p-values are dependent (one model computes them all), so neither combination
is read against its textbook null (chi-squared for Fisher): the combined score is calibrated
split-conformally like every other, which holds the target FPR whatever the dependence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genood.models.base import LikelihoodModel
from genood.ood.base import Detection, Detector
from genood.ood.statistics import Requirement, Statistics, Stats, count, subset

MAD_TO_STD = 1.4826
METHODS = ("max-z", "fisher", "simes")


class Combined(Detector):
    """``max_k`` of the components' robust z-scores (see the module doc).

    Args:
        detectors: two or more unfitted detectors over images of one shape.
        method: ``max-z``, ``fisher`` or ``simes`` (see the module doc).
        store: where statistics are computed (default: the first component's store).

    Attributes:
        medians_, scales_: per component, measured on held-out in-distribution images.
        references_: ``(K, n)`` sorted component scores on those images (the p-values'
            reference).
    """

    name = "combined"
    summary = "flag inputs extreme on any of its components (max of robust z-scores)"
    grammar = "A+B"
    unit = "robust z-score (max over components)"
    needs = ()
    listed = False

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        method: str = "max-z",
        store: Statistics | None = None,
    ) -> None:
        detectors = list(detectors)
        if len(detectors) < 2:
            raise ValueError(f"a combination needs at least 2 detectors, got {len(detectors)}")
        if method not in METHODS:
            raise ValueError(f"unknown combination method {method!r}; known: {', '.join(METHODS)}")
        super().__init__(store=store if store is not None else detectors[0].store)
        shapes = {tuple(d.image_shape) for d in detectors}
        if len(shapes) > 1:
            raise ValueError(f"the detectors take images of different shapes: {sorted(shapes)}")
        self.detectors = detectors
        self.method = method
        for detector in detectors:  # one store: each model pass is shared by the components
            detector.store = self.store
        self.models()  # refuse two different models under one argument name now
        self.medians_: np.ndarray | None = None
        self.scales_: np.ndarray | None = None
        self.references_: np.ndarray | None = None

    @property
    def label(self) -> str:
        """``complexity+typicality`` (``...@fisher``): the components joined by ``+``."""
        joined = "+".join(d.label for d in self.detectors)
        return joined if self.method == "max-z" else f"{joined}@{self.method}"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.detectors[0].image_shape

    def models(self) -> dict[str, LikelihoodModel]:
        found: dict[str, LikelihoodModel] = {}
        for detector in self.detectors:
            for name, model in detector.models().items():
                if name in found and found[name] is not model:
                    raise ValueError(f"the components use two different {name!r} models")
                found[name] = model
        return found

    @property
    def memorises_fit_images(self) -> bool:  # type: ignore[override]
        return any(d.memorises_fit_images for d in self.detectors)

    def requirements(self) -> list[Requirement]:
        return [r for detector in self.detectors for r in detector.requirements()]

    def _fit(self, stats: Stats) -> None:
        n = count(stats)
        if n < 4:
            raise ValueError(f"Combined.fit needs at least 4 images, got {n}")
        fitting, reference = stats, stats
        if self.memorises_fit_images:
            fitting, reference = subset(stats, slice(0, n // 2)), subset(stats, slice(n // 2, n))
        for detector in self.detectors:
            detector.fit(fitting)
        components = self.component_scores(reference)
        medians = np.median(components, axis=1)
        scales = MAD_TO_STD * np.median(np.abs(components - medians[:, None]), axis=1)
        for k, scale in enumerate(scales):
            if not scale > 0:  # a MAD of zero: fall back on the standard deviation
                scales[k] = np.std(components[k])
            if not scales[k] > 0:
                raise ValueError(f"{self.detectors[k].name} is constant on the fitting images")
        self.medians_, self.scales_ = medians, scales
        self.references_ = np.sort(components, axis=1)

    def component_scores(self, X: Any) -> np.ndarray:
        """Every component's raw score, shape ``(K, N)``."""
        stats = self._stats(X)
        return np.stack([detector.decision_function(stats) for detector in self.detectors])

    def z_scores(self, X: Any) -> np.ndarray:
        """Every component's robust z-score, shape ``(K, N)`` (which one drives a rejection)."""
        self._require_fitted("z_scores")
        assert self.medians_ is not None and self.scales_ is not None
        components = self.component_scores(X)
        return (components - self.medians_[:, None]) / self.scales_[:, None]

    def p_values_of_components(self, X: Any) -> np.ndarray:
        """Every component's conformal p-value against its reference scores, ``(K, N)``."""
        self._require_fitted("p_values_of_components")
        assert self.references_ is not None
        components = self.component_scores(X)
        n = self.references_.shape[1]
        above = [
            n - np.searchsorted(ref, c, side="left") for ref, c in zip(self.references_, components)
        ]
        return (1.0 + np.stack(above)) / (n + 1.0)

    def _score(self, stats: Stats) -> np.ndarray:
        if self.method == "max-z":
            return self.z_scores(stats).max(axis=0)
        p = self.p_values_of_components(stats)
        if self.method == "fisher":
            return -2.0 * np.log(p).sum(axis=0)
        ranks = np.arange(1, len(p) + 1)[:, None]
        return -np.log((len(p) * np.sort(p, axis=0) / ranks).min(axis=0))

    def detect(self, X: Any) -> Detection:
        """Scores, decisions and each component's z-score (which one drove a rejection)."""
        threshold = self._require_calibrated("detect")
        stats = self._stats(X)
        z = self.z_scores(stats)
        scores = self.decision_function(stats)
        components = {d.name: z[k] for k, d in enumerate(self.detectors)}
        return Detection(self.label, scores, self.reject(scores), threshold, components)

    # ------------------------------------------------------------- persistence
    def settings(self) -> dict[str, Any]:
        return {"components": [d.name for d in self.detectors], "method": self.method}

    def save(self, path: str | Path) -> Path:
        """Write the combination and each component (``component-K/``) under ``path``."""
        path = super().save(path)
        for k, detector in enumerate(self.detectors):
            detector.save(path / f"component-{k}")
        return path

    @classmethod
    def _restore(
        cls,
        path: Path,
        document: dict[str, Any],
        models: dict[str, Any],
        check_models: bool,
        store: Statistics,
    ) -> Detector:
        names = document["config"]["components"]
        detectors = [
            Detector.load(path / f"component-{k}", check_models=check_models, store=store, **models)
            for k in range(len(names))
        ]
        return cls(detectors, method=document["config"].get("method", "max-z"), store=store)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.medians_ is not None and self.scales_ is not None
        assert self.references_ is not None
        arrays = {"medians": self.medians_, "scales": self.scales_, "references": self.references_}
        return {}, arrays

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.medians_, self.scales_ = arrays["medians"], arrays["scales"]
        self.references_ = arrays.get("references")
