"""The detector contract every OOD score in :mod:`genood.ood` follows.

A detector turns a likelihood model (or several) into a per-image *score* where **higher means
more anomalous**, for every detector, whatever the underlying quantity. The API is the
scikit-learn / PyOD one:

* ``fit(train_images)``: learn what the score needs from in-distribution data (a typical value,
  say). Use held-out training images the model was not trained on.
* ``score_samples(images)``: ``(N,)`` float64 scores, higher = more anomalous.
* ``calibrate(val_images, target_fpr)``: set the rejection threshold from held-out
  in-distribution images, a *different* split from the one given to ``fit``.
* ``predict(images)``: boolean "reject" per image (score above the threshold).
* ``save(path)`` / ``load(path, model=...)``: the fitted state as JSON (+ ``.npz``); the
  likelihood models themselves live in their run folders and are passed back in on load.

Calibration is split-conformal (Vovk et al. 2005; Angelopoulos & Bates 2021): with ``n``
calibration scores and target rate ``alpha`` the threshold is the ``k``-th smallest score,
``k = ceil((n + 1)(1 - alpha))``. For a new in-distribution image exchangeable with the
calibration set, ``P(score > threshold) <= alpha``, and at most ``alpha * n`` calibration images
are themselves rejected. The same calibration scores give conformal p-values,
``p(x) = (1 + #{s_i >= s(x)}) / (n + 1)``.

Inputs are validated, never rescaled: uint8 ``(N, C, H, W)`` in the model's image shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from genood.models.base import LikelihoodModel

SCORE_CONVENTION = "higher = more anomalous"
FORMAT_VERSION = 1
CONFIG_FILE = "detector.json"
ARRAYS_FILE = "arrays.npz"


class NotFittedError(RuntimeError):
    """A detector was used before ``fit`` (or ``predict`` before ``calibrate``)."""


# ----------------------------------------------------------------------------- validation
def validate_images(images: Any, image_shape: tuple[int, int, int], who: str) -> np.ndarray:
    """Return ``images`` as a uint8 ``(N, C, H, W)`` numpy array, or raise a clear error.

    Accepts numpy arrays and torch tensors. Nothing is rescaled or cast: a float array is an
    error (with its value range, and a note when it holds NaN), so are other integer types, a
    single image without its batch axis, channels-last layouts and empty batches.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"{who} expects a uint8 numpy array (N, C, H, W), got {type(images).__name__}"
        )
    expected = f"(N, {', '.join(map(str, image_shape))})"
    if images.dtype != np.uint8:
        if images.size and np.issubdtype(images.dtype, np.floating):
            nan = int(np.isnan(images).sum())
            finite = images[np.isfinite(images)]
            span = f"[{finite.min():g}, {finite.max():g}]" if finite.size else "none finite"
            detail = f"values {span}" + (f", {nan} NaN" if nan else "")
            raise TypeError(
                f"{who} expects uint8 images with values 0..255, got {images.dtype} ({detail}); "
                "nothing is rescaled silently: if your floats are in [0, 1] convert with "
                "(x * 255).round().astype(np.uint8)"
            )
        if images.size and np.issubdtype(images.dtype, np.integer):
            raise TypeError(
                f"{who} expects uint8 images with values 0..255, got {images.dtype} "
                f"(values [{images.min()}, {images.max()}]); convert explicitly with "
                "images.astype(np.uint8) if they are 8-bit"
            )
        raise TypeError(f"{who} expects uint8 images with values 0..255, got {images.dtype}")
    if images.ndim == 3 and tuple(images.shape) == tuple(image_shape):
        raise ValueError(
            f"{who} expects a batch {expected}, got a single image {images.shape}; use images[None]"
        )
    channels_last = (*image_shape[1:], image_shape[0])
    # channels-last is recognisable only when C differs from H
    if images.ndim == 4 and images.shape[1:] == channels_last and image_shape[0] != image_shape[1]:
        raise ValueError(
            f"{who} expects channels-first images {expected}, got {images.shape} "
            "(channels last?); use images.transpose(0, 3, 1, 2)"
        )
    if images.ndim == 3 and image_shape[0] == 1 and tuple(images.shape[1:]) == image_shape[1:]:
        raise ValueError(
            f"{who} expects {expected}, got {images.shape} without a channel axis; "
            "use images[:, None]"
        )
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{who} expects images of shape {expected}, got {images.shape}; pad, resize or "
            "convert channels with genood.data.transforms the way the model's run did"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{who} got an empty batch (0 images)")
    return images


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of a model's class and state dict, to tell a detector's model from another."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().cpu().contiguous()
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


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


# ----------------------------------------------------------------------------- scoring
class ScoreCache:
    """Memo of per-sample model scores, so that detectors sharing a model score a set once.

    Keys are the model (by identity, kept alive here) and a digest of the image bytes; values
    are :func:`~genood.models.scoring.score_images` results (bits/dim and every term). Lossless
    codecs' lengths are memoised the same way, by codec name.
    """

    def __init__(self) -> None:
        self._scores: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self._models: dict[int, LikelihoodModel] = {}
        self._codec_bits: dict[tuple[str, str], np.ndarray] = {}

    def get(self, model: LikelihoodModel, images: np.ndarray) -> dict[str, np.ndarray] | None:
        return self._scores.get((id(model), _digest(images)))

    def put(
        self, model: LikelihoodModel, images: np.ndarray, scores: dict[str, np.ndarray]
    ) -> None:
        self._models[id(model)] = model
        self._scores[(id(model), _digest(images))] = scores

    def codec_bits(
        self, codec: str, images: np.ndarray, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """Compressed lengths of ``images`` with ``codec``, computed once by ``compute()``."""
        key = (codec, _digest(images))
        if key not in self._codec_bits:
            self._codec_bits[key] = compute()
        return self._codec_bits[key]


def _digest(images: np.ndarray) -> str:
    digest = hashlib.sha1(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()


def model_scores(
    model: LikelihoodModel,
    images: np.ndarray,
    batch_size: int = 256,
    progress: bool = False,
    cache: ScoreCache | None = None,
    desc: str = "scoring",
) -> dict[str, np.ndarray]:
    """Deterministic (bin-midpoint) ``bits_per_dim``, ``log_prob`` and terms, float64 ``(N,)``."""
    from genood.models.scoring import score_images

    if cache is not None and (hit := cache.get(model, images)) is not None:
        return hit
    scores = score_images(model, images, batch_size=batch_size, progress=progress, desc=desc)
    scores = {name: np.asarray(value, dtype=np.float64) for name, value in scores.items()}
    if cache is not None:
        cache.put(model, images, scores)
    return scores


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
_DETECTORS: dict[str, type[Detector]] = {}


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make ``cls`` loadable by its ``name`` from a saved detector."""
    _DETECTORS[cls.name] = cls
    return cls


def detector_types() -> dict[str, type[Detector]]:
    """Every registered detector class by name."""
    return dict(_DETECTORS)


class Detector:
    """Base class of OOD detectors: ``fit``, ``score_samples``, ``calibrate``, ``predict``.

    Subclasses set ``name``, ``unit``, ``model_names`` (the constructor arguments that are
    likelihood models, passed back in on :meth:`load`), ``memorises_fit_images`` (its scores
    on its own fitting images are biased, as a kernel density estimate's are), implement :meth:`_score` and, when they
    learn something from in-distribution data, :meth:`_fit` with :meth:`_state` /
    :meth:`_set_state` to persist it.

    Attributes:
        fitted_: ``fit`` has run.
        threshold_: the calibrated threshold (``None`` before ``calibrate``).
        target_fpr_: the ``alpha`` the threshold was calibrated for.
        calibration_scores_: sorted calibration scores (they give conformal p-values).
    """

    name: ClassVar[str] = "detector"
    unit: ClassVar[str] = "bits/dim"
    model_names: ClassVar[tuple[str, ...]] = ("model",)
    # True when scores on the fitting images are biased (a density estimate that holds them)
    memorises_fit_images: ClassVar[bool] = False

    def __init__(
        self, *, batch_size: int = 256, progress: bool = False, cache: ScoreCache | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.progress = progress
        self.cache = cache
        self.fitted_ = False
        self.n_fit_ = 0
        self.threshold_: float | None = None
        self.target_fpr_: float | None = None
        self.calibration_scores_: np.ndarray | None = None

    # ------------------------------------------------------------- to implement
    @property
    def label(self) -> str:
        """How tables and rejection reasons name this score (default: :attr:`name`)."""
        return self.name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images the detector takes (its model's)."""
        return self.models()["model"].image_shape

    def models(self) -> dict[str, LikelihoodModel]:
        """The likelihood models the score uses, by constructor argument name."""
        return {name: getattr(self, name) for name in self.model_names}

    def _fit(self, images: np.ndarray) -> None:
        """Learn from in-distribution images (default: nothing to learn)."""

    def _score(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        """Constructor keyword arguments other than models (JSON-serialisable)."""
        return {"batch_size": self.batch_size}

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted state beyond the threshold: (JSON values, named arrays)."""
        return {}, {}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned."""

    # ------------------------------------------------------------- the API
    def fit(self, train_images: Any) -> Self:
        """Learn what the score needs from in-distribution images (held out from training)."""
        images = validate_images(train_images, self.image_shape, f"{type(self).__name__}.fit")
        self._fit(images)
        self.fitted_ = True
        self.n_fit_ = len(images)
        return self

    def score_samples(self, images: Any) -> np.ndarray:
        """Per-image anomaly scores, ``(N,)`` float64; **higher = more anomalous**.

        Non-finite scores (a model overflowing on a far-off input) come with a warning; NaN
        is returned as ``+inf``, the most anomalous value.
        """
        self._require_fitted("score_samples")
        checked = validate_images(images, self.image_shape, f"{type(self).__name__}")
        scores = np.asarray(self._score(checked), dtype=np.float64)
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

    def calibrate(self, val_images: Any, target_fpr: float = 0.05) -> Self:
        """Set the threshold so that at most ``target_fpr`` of in-distribution inputs are rejected.

        Use held-out in-distribution images not given to :meth:`fit`. See the module doc for
        the split-conformal rule and its guarantee.
        """
        self._require_fitted("calibrate")
        scores = self.score_samples(val_images)
        self.threshold_ = conformal_threshold(scores, target_fpr)
        self.target_fpr_ = float(target_fpr)
        self.calibration_scores_ = np.sort(scores)
        return self

    def detect(self, images: Any) -> Detection:
        """Scores and reject decisions in one pass."""
        threshold = self._require_calibrated("detect")
        scores = self.score_samples(images)
        return Detection(self.label, scores, self.reject(scores), threshold)

    def predict(self, images: Any) -> np.ndarray:
        """Boolean ``(N,)``: ``True`` = reject as out-of-distribution."""
        return self.detect(images).rejected

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
            "config": self._config(),
            "state": {
                **values,
                "n_fit": self.n_fit_,
                "threshold": self.threshold_,
                "target_fpr": self.target_fpr_,
            },
            "models": {
                name: {**_jsonable(model.describe()), "fingerprint": fingerprint(model)}
                for name, model in self.models().items()
            },
        }
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")
        np.savez(path / ARRAYS_FILE, **arrays)
        return path

    @classmethod
    def load(
        cls, path: str | Path, *, check_models: bool = True, **models: LikelihoodModel
    ) -> Detector:
        """Rebuild a saved detector around the models it was fitted with.

        Args:
            path: folder written by :meth:`save`.
            check_models: refuse models whose weights differ from the saved fingerprints.
            **models: the likelihood models by argument name (``model=``, ``background=``...).
        """
        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.exists():
            raise FileNotFoundError(f"{config_path} does not exist: not a saved genood detector")
        document = json.loads(config_path.read_text())
        kind = document.get("type")
        if kind not in _DETECTORS:
            raise ValueError(f"{config_path}: unknown detector type {kind!r}")
        target = _DETECTORS[kind]
        if cls is not Detector and not issubclass(target, cls):
            raise TypeError(f"{config_path} holds a {kind!r} detector, not a {cls.name!r}")
        needed = list(document["models"])
        missing = [name for name in needed if models.get(name) is None]
        if missing:
            raise TypeError(f"loading a {kind!r} detector needs model argument(s) {missing}")
        chosen = {name: models[name] for name in needed}
        detector = target._restore(path, document, chosen, check_models)
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
        models: dict[str, LikelihoodModel],
        check_models: bool,
    ) -> Detector:
        """A fresh, unfitted detector built from a saved document (state is set by ``load``)."""
        return cls(**models, **document["config"])

    # ------------------------------------------------------------- helpers
    def _bits(self, model: LikelihoodModel, images: np.ndarray, desc: str) -> np.ndarray:
        return self._scores(model, images, desc)["bits_per_dim"]

    def _scores(
        self, model: LikelihoodModel, images: np.ndarray, desc: str
    ) -> dict[str, np.ndarray]:
        return model_scores(model, images, self.batch_size, self.progress, self.cache, desc)

    def _codec_bits(self, images: np.ndarray, codec: str, workers: int = 1) -> np.ndarray:
        """``L(x)`` in bits per image with a lossless codec (memoised in the cache)."""
        from genood.ood.complexity import compressed_bits

        def compute() -> np.ndarray:
            return compressed_bits(images, codec, workers, self.progress)

        return compute() if self.cache is None else self.cache.codec_bits(codec, images, compute)

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
        state = "calibrated" if self.threshold_ is not None else "fitted" if self.fitted_ else ""
        return f"{type(self).__name__}({state})"


def _jsonable(value: Any) -> Any:
    """Make ``describe()`` output JSON-safe (tuples to lists, other objects to strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
