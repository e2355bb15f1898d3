"""The classifier's own scores as baselines: maximum softmax probability and the energy score.

A density gate is judged against what a user of a classifier already has: its outputs. Two
classic scores read a classifier ``p(y | x) = softmax(f(x))`` with logits ``f(x)``, and never a
likelihood model:

* ``msp`` (Hendrycks & Gimpel, "A baseline for detecting misclassified and out-of-distribution
  examples in neural networks", ICLR 2017): ``s(x) = -max_y p(y | x)``, in ``[-1, -1/K]``;
  a confident prediction is in-distribution, so higher = less confident = more anomalous.
* ``energy[:T]`` (Liu, Wang, Owens & Li, "Energy-based out-of-distribution detection",
  NeurIPS 2020): the free energy ``s(x) = E(x; f) = -T logsumexp_y(f_y(x) / T)``, ``T = 1``
  by default as the paper's inference-time score (no fine-tuning with auxiliary outliers
  here); higher energy = lower unnormalised density = more anomalous.

Both are computed from the logits, which the statistics layer stores once per (classifier,
image set) as ``classifier/logit.0 .. classifier/logit.<K-1>`` (:class:`ClassifierLogits`),
so ``msp`` and ``energy`` at any ``T`` share one classifier pass, cached on disk like a model
pass (the file's key holds the classifier's weight fingerprint).

The classifier reads the images **as loaded** (it was trained on them by
``genood train-classifier``; a :class:`~genood.ood.guard.GuardedClassifier` feeds it the same),
not the likelihood model's preprocessing of them (a Glow run pads 28x28 to 32x32):
:func:`genood.ood.workflow.gather_sets` gives these requirements the loaded images. Called
directly, ``detector.fit(images)`` takes images in the classifier's shape. In a
``GuardedClassifier`` with one of these detectors, leave ``detector_preprocessing`` out.

What they need: a classifier with ``logits(images) -> (N, K)``, ``image_shape``,
``num_classes``, ``state_dict()`` and ``describe()``, i.e. a
:class:`~genood.ood.classifier.Classifier` (``genood train-classifier``; ``genood detect
--guard DIR`` passes it). Cost: one classifier forward pass per image. Neither score learns
anything in ``fit``; the threshold is calibrated split-conformally like every score's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import logsumexp

from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats
from genood.ood.validation import fingerprint

PREFIX = "classifier"


@dataclass(frozen=True, eq=False)
class ClassifierOutputs(Requirement):
    """One output of a classifier on the images as loaded, a statistic per column:
    ``classifier/<stat>.k`` from ``classifier.<method>(images, batch_size) -> (N, K)``.

    Attributes:
        classifier: the classifier (see the module doc for what it must have).
        digest: its weight fingerprint (part of the cache key); filled in by
            :func:`classifier_logits` (or :func:`~genood.ood.mahalanobis.classifier_features`).
    """

    classifier: Any = None
    digest: str = field(default="")
    method: ClassVar[str] = "logits"  # the classifier's method, and the cache key's stem
    stat: ClassVar[str] = "logit"  # the statistics' stem

    @property
    def key(self) -> str:
        return f"{self.method}-{self.digest[:16]}"

    @property
    def on_loaded_images(self) -> bool:
        return True

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        output = getattr(self.classifier, self.method)(images, settings.batch_size)
        values = np.asarray(output, np.float64)
        return {f"{self.stat}.{k}": values[:, k].copy() for k in range(values.shape[1])}


class ClassifierLogits(ClassifierOutputs):
    """A classifier's logits, ``classifier/logit.k`` for each class."""


def classifier_logits(classifier: Any) -> ClassifierLogits:
    """The requirement ``classifier/logit.k`` of ``classifier`` (its statistics are stored under
    the store's ``input`` folder, keyed by the classifier's fingerprint)."""
    return ClassifierLogits(PREFIX, None, classifier, fingerprint(classifier))


CLASSIFIER_API = ("logits", "image_shape", "num_classes", "state_dict", "describe")


def gives_logits(classifier: Any) -> bool:
    """Whether ``classifier`` has what ``msp`` and ``energy`` read (see the module doc)."""
    return all(hasattr(classifier, name) for name in CLASSIFIER_API)


def check_classifier(classifier: Any, score: str) -> None:
    """Refuse anything that is not a classifier with logits, naming the fix."""
    missing = [name for name in CLASSIFIER_API if not hasattr(classifier, name)]
    if missing:
        raise TypeError(
            f"the {score} score needs a classifier with logits(images) (genood.ood.Classifier, "
            f"from `genood train-classifier`), got {type(classifier).__name__} without "
            f"{', '.join(missing)}"
        )


class ClassifierScore(Detector):
    """Base of the scores computed from a classifier's logits (not registered itself)."""

    needs = ("classifier",)

    def __init__(self, classifier: Any, *, store: Statistics | None = None) -> None:
        super().__init__(store=store)
        check_classifier(classifier, self.name or "classifier")
        self.classifier = classifier

    def requirements(self) -> list[Requirement]:
        return [classifier_logits(self.classifier)]

    def logits(self, stats: Stats) -> np.ndarray:
        """``(N, K)`` logits from the statistics."""
        count = int(self.classifier.num_classes)
        return np.stack([self.stat(stats, f"{PREFIX}/logit.{k}") for k in range(count)], axis=1)


class MaxSoftmax(ClassifierScore):
    """``s(x) = -max_y softmax(f(x))_y`` (Hendrycks & Gimpel 2017); higher = less confident.

    Args:
        classifier: a :class:`~genood.ood.classifier.Classifier` (or anything with its API).
        store: see :class:`~genood.ood.base.Detector`.
    """

    name = "msp"
    summary = (
        "minus the classifier's maximum softmax probability (Hendrycks & Gimpel 2017); the "
        "classifier sees the images as loaded"
    )
    unit = "-max p(y|x)"

    def _score(self, stats: Stats) -> np.ndarray:
        logits = self.logits(stats)
        log_max = logits.max(axis=1) - logsumexp(logits, axis=1)
        return -np.exp(log_max)


class Energy(ClassifierScore):
    """``s(x) = -T logsumexp_y(f_y(x) / T)``, the free energy (Liu et al. 2020).

    Args:
        classifier: a :class:`~genood.ood.classifier.Classifier` (or anything with its API).
        temperature: ``T > 0`` (the paper scores with ``T = 1``).
        store: see :class:`~genood.ood.base.Detector`.
    """

    name = "energy"
    summary = (
        "the classifier's free energy -T logsumexp(f(x)/T), T = 1 by default (Liu et al. "
        "2020); the classifier sees the images as loaded"
    )
    grammar = "energy[:T]"
    unit = "energy (nats)"

    def __init__(
        self, classifier: Any, *, temperature: float = 1.0, store: Statistics | None = None
    ) -> None:
        super().__init__(classifier, store=store)
        if not temperature > 0:
            raise ValueError(f"energy's temperature T must be > 0, got {temperature}")
        self.temperature = float(temperature)

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        if not options:
            return {}
        try:
            value = float(options[0]) if len(options) == 1 else float("nan")
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise ValueError(
                "energy takes energy or energy:T with a temperature T > 0, got "
                + ":".join([cls.name, *options])
            )
        return {"temperature": value}

    @property
    def label(self) -> str:
        return self.name if self.temperature == 1.0 else f"{self.name}:{self.temperature:g}"

    def _score(self, stats: Stats) -> np.ndarray:
        t = self.temperature
        return -t * logsumexp(self.logits(stats) / t, axis=1)
