"""The detector contract every OOD score in :mod:`genood.ood` follows.

A detector turns a likelihood model (or several) into a per-image *score* where **higher means
more anomalous**, for every detector, whatever the underlying quantity. The names are PyOD's
and scikit-learn's:

* ``fit(X)``: learn what the score needs from in-distribution data (a typical value, say). Use
  held-out training images the model was not trained on.
* ``decision_function(X)``: ``(N,)`` float64 scores, higher = more anomalous (PyOD's meaning).
  ``score_samples`` is its deprecated alias (scikit-learn's ``score_samples`` has the opposite
  sign, so the name goes).
* ``calibrate(X, target_fpr)``: set the rejection threshold from held-out in-distribution
  images, a *different* split from the one given to ``fit``.
* ``predict(X)``: boolean "reject" per image (score above the threshold).
* ``get_params()``: the constructor's arguments, read from ``__init__`` as scikit-learn does.
* ``save(path)`` / ``load(path, model=...)``: the fitted state as JSON (+ ``.npz``); the
  likelihood models themselves live in their run folders and are passed back in on load, and
  their weights must match the fingerprint saved with the detector.

``X`` is either uint8 images ``(N, C, H, W)`` in the model's shape (validated, never rescaled)
or a statistics dictionary from :meth:`Detector.statistics` /
:class:`~genood.ood.statistics.Statistics` (``"model/bits_per_dim" -> (N,)`` ...): detectors
compute on those arrays only, so a workflow computes each model pass once and slices it, and
tests can feed synthetic arrays.

Calibration is split-conformal (Vovk et al. 2005; Angelopoulos & Bates 2021): with ``n``
calibration scores and target rate ``alpha`` the threshold is the ``k``-th smallest score,
``k = ceil((n + 1)(1 - alpha))``. For a new in-distribution image exchangeable with the
calibration set, ``P(score > threshold) <= alpha``, and at most ``alpha * n`` calibration images
are themselves rejected. The same calibration scores give conformal p-values,
``p(x) = (1 + #{s_i >= s(x)}) / (n + 1)``.

A new score is a subclass that sets ``name``, ``summary``, ``grammar``, ``unit`` and ``needs``,
and implements :meth:`~Detector.requirements` and :meth:`~Detector._score` (and ``_fit`` /
``_state`` / ``_set_state`` when it learns something); :mod:`genood.ood.registry` picks it up.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from genood.io import save_npz_atomic, write_text_atomic
from genood.models.base import LikelihoodModel
from genood.ood import registry
from genood.ood.statistics import Requirement, Statistics, Stats, count
from genood.ood.validation import fingerprint, validate_images

SCORE_CONVENTION = "higher = more anomalous"
FORMAT_VERSION = 1
CONFIG_FILE = "detector.json"
ARRAYS_FILE = "arrays.npz"
# Constructor arguments that are resources of this process, not settings of the detector.
RUNTIME_PARAMS = ("store",)

__all__ = [
    "SCORE_CONVENTION",
    "Detection",
    "Detector",
    "NotFittedError",
    "conformal_threshold",
    "fingerprint",
    "validate_images",
]


class NotFittedError(RuntimeError):
    """A detector was used before ``fit`` (or ``predict`` before ``calibrate``)."""


def conformal_threshold(scores: np.ndarray, target_fpr: float) -> float:
    """Split-conformal threshold: reject ``s > t`` with ``P(reject | in-distribution) <= alpha``.

    Args:
        scores: calibration scores of held-out in-distribution images.
        target_fpr: ``alpha`` in ``(0, 1)``.

    Raises:
        ValueError: when ``n < 1/alpha - 1`` calibration images cannot support ``alpha``.
    """
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    n = len(scores)
    k = math.ceil((n + 1) * (1.0 - target_fpr))
    if k > n:
        needed = math.ceil(1.0 / target_fpr - 1.0)
        raise ValueError(
            f"{n} calibration images cannot support target_fpr={target_fpr}: "
            f"at least {needed} are needed"
        )
    return float(np.sort(scores)[k - 1])


@dataclass
class Detection:
    """Scores and decisions of a calibrated detector on a batch.

    Attributes:
        score_name: the detector's label (``likelihood``, ``complexity+typicality``...).
        scores: ``(N,)`` scores, higher = more anomalous.
        rejected: ``(N,)`` booleans, ``scores > threshold`` (a NaN score is rejected).
        threshold: the calibrated threshold.
        components: for a combination, each component's standardised score ``(N,)``.
    """

    score_name: str
    scores: np.ndarray
    rejected: np.ndarray
    threshold: float
    components: dict[str, np.ndarray] | None = None


# ----------------------------------------------------------------------------- the base class
class Detector:
    """Base class of OOD detectors: ``fit``, ``decision_function``, ``calibrate``, ``predict``.

    Class attributes a score sets:
        name: its registry name (``likelihood``); a class without one is not registered.
        summary: one line for ``genood detect --help`` and the README's table.
        grammar: its spec with options (``complexity[:CODEC]``); default the name.
        unit: the unit of the score.
        needs: the constructor arguments that are likelihood models (``model``,
            ``background``, ``ensemble``); they are passed back in on :meth:`load`.
        listed: offered by :func:`genood.ood.available` (``False`` for the combination).
        memorises_fit_images: its scores on its own fitting images are biased (a kernel
            density estimate holds them).
        model_family: the model family its ``model`` must be (``hvae``), ``None`` for any
            likelihood model.

    Attributes:
        fitted_: ``fit`` has run.
        threshold_: the calibrated threshold (``None`` before ``calibrate``).
        target_fpr_: the ``alpha`` the threshold was calibrated for.
        calibration_scores_: sorted calibration scores (they give conformal p-values).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    grammar: ClassVar[str] = ""
    unit: ClassVar[str] = "bits/dim"
    needs: ClassVar[tuple[str, ...]] = ("model",)
    listed: ClassVar[bool] = True
    memorises_fit_images: ClassVar[bool] = False
    model_family: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.name:
            registry.register(cls)

    def __init__(self, *, store: Statistics | None = None) -> None:
        self.store = store if store is not None else Statistics()
        self.fitted_ = False
        self.n_fit_ = 0
        self.threshold_: float | None = None
        self.target_fpr_: float | None = None
        self.calibration_scores_: np.ndarray | None = None

    # ------------------------------------------------------------- to implement
    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        """Constructor keyword arguments of a spec's options (``llr:2:mode`` -> ``["2", "mode"]``).

        The default takes no option. ``codec`` is the default codec of scores that use one.
        """
        if options:
            raise ValueError(
                f"{cls.name} takes no option, got {cls.name}:{':'.join(options)}"
                + (f"; grammar: {cls.grammar}" if cls.grammar else "")
            )
        return {}

    def requirements(self) -> list[Requirement]:  # pragma: no cover - abstract
        """The statistics the score reads (see :mod:`genood.ood.statistics`)."""
        raise NotImplementedError

    def _fit(self, stats: Stats) -> None:
        """Learn from in-distribution statistics (default: nothing to learn)."""

    def _score(self, stats: Stats) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted state beyond the threshold: (JSON values, named arrays)."""
        return {}, {}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned."""

    # ------------------------------------------------------------- what it is
    @property
    def label(self) -> str:
        """How tables and rejection reasons name this score (default: :attr:`name`)."""
        return self.name

    def models(self) -> dict[str, LikelihoodModel]:
        """The likelihood models the score uses, by constructor argument name."""
        return {name: getattr(self, name) for name in self.needs}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images the detector takes (its models')."""
        return next(iter(self.models().values())).image_shape

    @property
    def reads_loaded_images(self) -> bool:
        """Whether a statistic it reads comes from the images as loaded, not the models' input
        (a classifier's logits: :attr:`~genood.ood.statistics.Requirement.on_loaded_images`).
        Such a detector takes the classifier's images, whatever a run's preprocessing."""
        return any(r.on_loaded_images for r in self.requirements())

    @property
    def num_dims(self) -> int:
        """``D``, the sub-pixels of one image."""
        return int(np.prod(self.image_shape))

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameters, in order (``self`` and ``*args`` excluded)."""
        signature = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in kinds
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor's arguments and their values (scikit-learn's and PyOD's API).

        With ``deep``, a combination also lists ``detectors__K__PARAM`` for its components.
        """
        params = {name: getattr(self, name) for name in self.param_names()}
        if deep:
            for k, detector in enumerate(getattr(self, "detectors", [])):
                for key, value in detector.get_params(deep=True).items():
                    params[f"detectors__{k}__{key}"] = value
        return params

    def settings(self) -> dict[str, Any]:
        """:meth:`get_params` without the models and runtime resources: what ``save`` stores."""
        skip = {*self.needs, *RUNTIME_PARAMS}
        return {k: v for k, v in self.get_params().items() if k not in skip}

    # ------------------------------------------------------------- statistics
    def statistics(self, images: Any) -> Stats:
        """The statistics this detector reads, for uint8 images (computed once per store)."""
        checked = validate_images(images, self.image_shape, type(self).__name__)
        return self.store.gather(self.requirements(), checked)

    def _stats(self, X: Any) -> Stats:
        """``X`` as statistics: a dictionary is taken as it is, images go through the store."""
        if isinstance(X, dict):
            count(X)
            return X
        return self.statistics(X)

    def stat(self, stats: Stats, key: str) -> np.ndarray:
        """One statistic, or an error that says which are there and how to get the others."""
        if key not in stats:
            have = ", ".join(sorted(stats)) or "none"
            raise ValueError(
                f"{self.label} needs the statistic {key!r}, not among those given ({have}); "
                "gather them with detector.statistics(images) or genood.ood.Statistics"
            )
        return np.asarray(stats[key], dtype=np.float64)

    # ------------------------------------------------------------- the API
    def fit(self, X: Any) -> Self:
        """Learn what the score needs from in-distribution images or their statistics."""
        stats = self._stats(X)
        self._fit(stats)
        self.fitted_ = True
        self.n_fit_ = count(stats)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Per-image anomaly scores, ``(N,)`` float64; **higher = more anomalous**.

        Non-finite scores (a model overflowing on a far-off input) come with a warning; NaN
        is returned as ``+inf``, the most anomalous value.
        """
        self._require_fitted("decision_function")
        scores = np.asarray(self._score(self._stats(X)), dtype=np.float64)
        bad = ~np.isfinite(scores)
        if bad.any():
            warnings.warn(
                f"{self.label}: {int(bad.sum())} of {len(scores)} scores are not finite "
                "(NaN counts as +inf, the most anomalous)",
                RuntimeWarning,
                stacklevel=2,
            )
            scores = np.where(np.isnan(scores), np.inf, scores)
        return scores

    def score_samples(self, X: Any) -> np.ndarray:
        """Deprecated alias of :meth:`decision_function` (higher = more anomalous)."""
        warnings.warn(
            "Detector.score_samples is deprecated and will be removed in the next release: "
            "use decision_function (same values, higher = more anomalous)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.decision_function(X)

    def calibrate(self, X: Any, target_fpr: float = 0.05) -> Self:
        """Set the threshold so that at most ``target_fpr`` of in-distribution inputs are rejected.

        Use held-out in-distribution images (or their statistics) not given to :meth:`fit`.
        See the module doc for the split-conformal rule and its guarantee.
        """
        self._require_fitted("calibrate")
        scores = self.decision_function(X)
        self.threshold_ = conformal_threshold(scores, target_fpr)
        self.target_fpr_ = float(target_fpr)
        self.calibration_scores_ = np.sort(scores)
        return self

    def detect(self, X: Any) -> Detection:
        """Scores and reject decisions in one pass."""
        threshold = self._require_calibrated("detect")
        scores = self.decision_function(X)
        return Detection(self.label, scores, self.reject(scores), threshold)

    def predict(self, X: Any) -> np.ndarray:
        """Boolean ``(N,)``: ``True`` = reject as out-of-distribution."""
        return self.detect(X).rejected

    def reject(self, scores: np.ndarray) -> np.ndarray:
        """Apply the calibrated threshold to precomputed scores (NaN is rejected)."""
        threshold = self._require_calibrated("reject")
        scores = np.asarray(scores, dtype=np.float64)
        return ~(scores <= threshold)

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-values of precomputed scores against the calibration scores."""
        self._require_calibrated("p_values")
        reference = self.calibration_scores_
        assert reference is not None
        above = len(reference) - np.searchsorted(reference, np.asarray(scores), side="left")
        return (1.0 + above) / (len(reference) + 1.0)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted state to folder ``path`` (``detector.json`` + ``arrays.npz``)."""
        self._require_fitted("save")
        path = Path(path)
        values, arrays = self._state()
        if self.calibration_scores_ is not None:
            arrays = {**arrays, "calibration_scores": self.calibration_scores_}
        document = {
            "genood_detector": FORMAT_VERSION,
            "type": self.name,
            "score_convention": SCORE_CONVENTION,
            "unit": self.unit,
            "config": jsonable(self.settings()),
            "state": {
                **values,
                "n_fit": self.n_fit_,
                "threshold": self.threshold_,
                "target_fpr": self.target_fpr_,
            },
            "models": {
                name: {**jsonable(model.describe()), "fingerprint": fingerprint(model)}
                for name, model in self.models().items()
            },
        }
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / CONFIG_FILE, json.dumps(document, indent=2) + "\n")
        save_npz_atomic(path / ARRAYS_FILE, **arrays)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        check_models: bool = True,
        store: Statistics | None = None,
        **models: Any,
    ) -> Detector:
        """Rebuild a saved detector around the models it was fitted with.

        Args:
            path: folder written by :meth:`save`.
            check_models: refuse models whose weights differ from the saved fingerprints.
            store: where its statistics are computed (default: a fresh in-memory store).
            **models: the likelihood models by argument name (``model=``, ``background=``...).
        """
        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.exists():
            raise FileNotFoundError(f"{config_path} does not exist: not a saved genood detector")
        try:
            document = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{config_path} is not valid JSON ({error}): save it again") from error
        kind = document.get("type")
        target = registry.detector_types().get(kind or "")
        if target is None:
            raise ValueError(f"{config_path}: unknown detector type {kind!r}")
        if cls is not Detector and not issubclass(target, cls):
            raise TypeError(f"{config_path} holds a {kind!r} detector, not a {cls.name!r}")
        needed = list(document["models"])
        missing = [name for name in needed if models.get(name) is None]
        if missing:
            raise TypeError(f"loading a {kind!r} detector needs model argument(s) {missing}")
        chosen = {name: models[name] for name in needed}
        store = store if store is not None else Statistics()
        detector = target._restore(path, document, chosen, check_models, store)
        if check_models:
            for name, model in detector.models().items():
                saved = document["models"][name]["fingerprint"]
                if fingerprint(model) != saved:
                    raise ValueError(
                        f"the {name!r} given to load {path} is not the model the detector was "
                        f"fitted with (weights differ from fingerprint {saved[:12]}...); pass "
                        "that model, or fit and calibrate again"
                    )
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        state = dict(document["state"])
        detector.fitted_ = True
        detector.n_fit_ = int(state.pop("n_fit"))
        detector.threshold_ = state.pop("threshold")
        detector.target_fpr_ = state.pop("target_fpr")
        detector.calibration_scores_ = arrays.pop("calibration_scores", None)
        detector._set_state(state, arrays)
        return detector

    @classmethod
    def _restore(
        cls,
        path: Path,
        document: dict[str, Any],
        models: dict[str, Any],
        check_models: bool,
        store: Statistics,
    ) -> Detector:
        """A fresh, unfitted detector built from a saved document (state is set by ``load``)."""
        known = set(cls.param_names())
        config = {k: v for k, v in document["config"].items() if k in known}
        return cls(**models, **config, store=store)

    # ------------------------------------------------------------- helpers
    def _require_fitted(self, what: str) -> None:
        if not self.fitted_:
            raise NotFittedError(
                f"{type(self).__name__}.{what} needs a fitted detector: call "
                "fit(train_images) first, with held-out in-distribution images"
            )

    def _require_calibrated(self, what: str) -> float:
        self._require_fitted(what)
        if self.threshold_ is None:
            raise NotFittedError(
                f"{type(self).__name__}.{what} needs a threshold: call "
                "calibrate(val_images, target_fpr) first, with held-out in-distribution images"
            )
        return self.threshold_

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        state = "calibrated" if self.threshold_ is not None else "fitted" if self.fitted_ else ""
        return f"{type(self).__name__}({params})" + (f" [{state}]" if state else "")


def jsonable(value: Any) -> Any:
    """Make ``describe()`` output JSON-safe (tuples to lists, other objects to strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
