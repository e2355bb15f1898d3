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

Components over different image shapes. A classifier's scores (``msp``, ``energy``) read the
images *as loaded*, a likelihood model its run's preprocessing of them (a Glow pads 28x28
FashionMNIST to 32x32). A combination of both takes the images as loaded, the classifier's
shape, and gives each component its own view of the *same* images: the requirements that read
loaded images get them unchanged, every other one gets ``preprocessing.apply(images)`` (a
:class:`~genood.data.transforms.Preprocessing`, the run's: ``genood detect`` passes it), through
:func:`~genood.ood.statistics.gather_views`, the routing the workflow uses. Fitted on statistics
dictionaries (the workflow's), nothing changes: each key already comes from its own view. With
all components on one view, the combination takes that view's images and ``preprocessing`` is
not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genood.data.transforms import Preprocessing
from genood.models.base import LikelihoodModel
from genood.ood.base import Detection, Detector
from genood.ood.statistics import Requirement, Statistics, Stats, count, gather_views, subset
from genood.ood.validation import validate_images

MAD_TO_STD = 1.4826
METHODS = ("max-z", "fisher", "simes")


class Combined(Detector):
    """``max_k`` of the components' robust z-scores (see the module doc).

    Args:
        detectors: two or more unfitted detectors.
        method: ``max-z``, ``fisher`` or ``simes`` (see the module doc).
        preprocessing: maps the images as loaded (the classifier's) to the likelihood models'
            input, for a combination of a classifier's score with a model's (``dos+energy``
            over a Glow that pads to 32x32: ``Preprocessing(pad_to=32)``, a run's
            ``load_run(...).preprocessing``); see the module doc. Not used otherwise.
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
        preprocessing: Preprocessing | None = None,
        store: Statistics | None = None,
    ) -> None:
        detectors = list(detectors)
        if len(detectors) < 2:
            raise ValueError(f"a combination needs at least 2 detectors, got {len(detectors)}")
        if method not in METHODS:
            raise ValueError(f"unknown combination method {method!r}; known: {', '.join(METHODS)}")
        if preprocessing is not None and not isinstance(preprocessing, Preprocessing):
            raise TypeError(
                "preprocessing must be a genood.data.transforms.Preprocessing (a run's, or "
                f"Preprocessing(pad_to=32)), got {type(preprocessing).__name__}"
            )
        super().__init__(store=store if store is not None else detectors[0].store)
        self.detectors = detectors
        self.method = method
        self.preprocessing = preprocessing
        self._input_shape, self.two_views = _views(detectors, preprocessing)
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
        """The shape of the images it takes: the classifier's when its components read two
        views (see the module doc), else the components' common shape."""
        return self._input_shape

    def statistics(self, images: Any) -> Stats:
        """Every component's statistics, each requirement on its own view of ``images``."""
        checked = validate_images(images, self.image_shape, type(self).__name__)
        if not self.two_views:
            return self.store.gather(self.requirements(), checked)
        prep = self.preprocessing or Preprocessing()
        shown = checked if prep.is_identity else prep.apply(checked)
        return gather_views(self.store, self.requirements(), shown, checked)

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
        prep = None if self.preprocessing is None else self.preprocessing.to_dict()
        return {
            "components": [d.name for d in self.detectors],
            "method": self.method,
            "preprocessing": prep,
        }

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
        config = document["config"]
        prep = config.get("preprocessing")
        return cls(
            detectors,
            method=config.get("method", "max-z"),
            preprocessing=None if prep is None else Preprocessing.from_dict(prep),
            store=store,
        )

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.medians_ is not None and self.scales_ is not None
        assert self.references_ is not None
        arrays = {"medians": self.medians_, "scales": self.scales_, "references": self.references_}
        return {}, arrays

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.medians_, self.scales_ = arrays["medians"], arrays["scales"]
        self.references_ = arrays.get("references")


def _views(
    detectors: list[Detector], preprocessing: Preprocessing | None
) -> tuple[tuple[int, int, int], bool]:
    """The shape a combination takes and whether its components read two views.

    Components that read the images as loaded (a classifier's scores) must share one shape,
    so must the others (the models' input), and ``preprocessing`` must map the first to the
    second. Raises ValueError naming the fix.
    """
    loaded = {_shape(d): d.label for d in detectors if d.reads_loaded_images}
    model = {_shape(d): d.label for d in detectors if not d.reads_loaded_images}
    for view, found in (("the images as loaded", loaded), ("the models' input", model)):
        if len(found) > 1:
            shapes = ", ".join(f"{label}: {'x'.join(map(str, s))}" for s, label in found.items())
            raise ValueError(
                f"the components that read {view} take images of different shapes ({shapes}); "
                "combine scores of one classifier and of models of one image shape"
            )
    if not (loaded and model):
        return next(iter(loaded or model)), False
    (source, reader), (target, modeller) = next(iter(loaded.items())), next(iter(model.items()))
    prep = preprocessing or Preprocessing()
    try:
        produced = prep.output_shape(source)
    except ValueError as error:
        raise ValueError(f"preprocessing {prep.to_dict()} cannot apply: {error}") from error
    if produced != target:
        shown = "x".join(map(str, source))
        wanted = "x".join(map(str, target))
        raise ValueError(
            f"{reader} reads the classifier's {shown} images and {modeller} the model's {wanted} "
            f"input, but preprocessing {prep.to_dict()} makes {'x'.join(map(str, produced))}: "
            "pass the run's preprocessing (build(..., preprocessing=load_run(RUN).preprocessing), "
            f"e.g. Preprocessing(pad_to={target[-1]}); genood detect passes it)"
        )
    return source, True


def _shape(detector: Detector) -> tuple[int, int, int]:
    c, h, w = (int(s) for s in detector.image_shape)
    return c, h, w
