"""The density gate: a classifier that answers "neither" for inputs its detector rejects.

"If you stick a picture of a chicken into an MNIST classifier, it should tell you it's neither a
seven nor a one." :class:`GuardedClassifier` wraps any predictive model ``p(y | x)`` with a
calibrated :class:`~genood.ood.base.Detector`: an image whose score exceeds the detector's
threshold gets the label ``-1`` and a reason (which score, its value, the threshold); every
other image gets the classifier's label. ``report`` gives the three figures that matter: the
share of in-distribution inputs wrongly turned away, the accuracy on those accepted, and the
share of OOD inputs caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from genood.data.transforms import Preprocessing
from genood.ood.base import Detector
from genood.ood.statistics import Stats

REJECT = -1


class Predictor(Protocol):
    """Anything with ``predict(images) -> (N,) int labels`` (e.g. :class:`~.classifier.Classifier`)."""

    def predict(self, images: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class Rejection:
    """Why an input was rejected: ``score`` (detector name) ``value`` > ``threshold``.

    For a combination of scores, ``component`` names the component with the largest
    standardised score and ``component_value`` gives it.
    """

    score: str
    value: float
    threshold: float
    component: str | None = None
    component_value: float | None = None

    def __str__(self) -> str:
        text = f"{self.score} score {self.value:.4g} > threshold {self.threshold:.4g}"
        if self.component is not None and self.component_value is not None:
            text += f" (driven by {self.component}, z = {self.component_value:.3g})"
        return text


@dataclass
class GuardDecision:
    """The guarded classifier's answer for a batch.

    Attributes:
        labels: ``(N,)`` int64, the classifier's label or ``-1`` (:data:`REJECT`) when rejected.
        rejected: ``(N,)`` booleans.
        predicted: ``(N,)`` the classifier's label for every input, rejected ones included.
        scores: ``(N,)`` the detector's scores (higher = more anomalous).
        reasons: per input, a :class:`Rejection` or ``None`` when accepted.
    """

    labels: np.ndarray
    rejected: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    reasons: list[Rejection | None]


class GuardedClassifier:
    """``classifier`` behind ``detector``: reject what the detector flags, classify the rest.

    Args:
        classifier: anything with ``predict(images) -> (N,) labels``.
        detector: a fitted and calibrated detector.
        detector_preprocessing: maps the classifier's images to the detector's model shape
            (e.g. a run's ``Preprocessing(...).apply`` that pads 28x28 to 32x32); identity if
            ``None``. It must not rescale values. Leave it out for a detector that reads the
            classifier's images (``msp``, ``energy``, and a combination with them such as
            ``dos+energy``, which preprocesses for its model itself: see
            :class:`~genood.ood.combine.Combined`); it is refused there.
    """

    def __init__(
        self,
        classifier: Predictor,
        detector: Detector,
        detector_preprocessing: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if not callable(getattr(classifier, "predict", None)):
            raise TypeError("classifier must have a predict(images) -> labels method")
        detector._require_calibrated("GuardedClassifier")
        if detector_preprocessing is not None and detector.reads_loaded_images:
            raise ValueError(
                f"{detector.label} reads the classifier's images (its logits), so it takes them "
                "as the classifier does: leave detector_preprocessing out (a combination with a "
                "model's score preprocesses for its model: build(spec, model, classifier=..., "
                "preprocessing=...))"
            )
        self.classifier = classifier
        self.detector = detector
        self.detector_preprocessing = detector_preprocessing

    @classmethod
    def recommended(
        cls,
        classifier: Predictor,
        model: Any,
        fit_images: Any,
        calibration_images: Any,
        target_fpr: float = 0.05,
        detector_preprocessing: Preprocessing | Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> GuardedClassifier:
        """``classifier`` guarded by the recommended detector, fitted on ``fit_images`` and
        calibrated at ``target_fpr`` on ``calibration_images`` (two disjoint held-out
        in-distribution sets of uint8 images).

        * A classifier that gives its logits and features (a
          :class:`~genood.ood.classifier.Classifier`): the recommended gate,
          ``genood.ood.RECOMMENDED_GATE`` (``dos+mahalanobis+energy:2@fisher``: the model's
          density of states, the classifier's Mahalanobis distance and its energy). One that
          gives its logits only: ``genood.ood.RECOMMENDED_LOGITS_GATE``
          (``dos+energy:2@fisher``). The images are the classifier's, as ``predict`` takes
          them; ``detector_preprocessing`` must then be the run's
          :class:`~genood.data.transforms.Preprocessing` (or ``None`` when the model takes the
          classifier's shape), which the combination applies for the model.
        * Any other predictor (labels only): ``genood.ood.RECOMMENDED`` (``dos``) of ``model``
          alone; the images are in the model's shape (already preprocessed), and
          ``detector_preprocessing`` maps ``predict``'s images to it.
        """
        from genood.ood.mahalanobis import gives_features
        from genood.ood.registry import (
            RECOMMENDED,
            RECOMMENDED_GATE,
            RECOMMENDED_LOGITS_GATE,
            build,
        )
        from genood.ood.softmax import gives_logits

        if gives_logits(classifier):
            spec = RECOMMENDED_GATE if gives_features(classifier) else RECOMMENDED_LOGITS_GATE
            prep = detector_preprocessing
            if prep is not None and not isinstance(prep, Preprocessing):
                raise TypeError(
                    f"the recommended gate ({spec}) preprocesses for the model "
                    "itself and needs the run's genood.data.transforms.Preprocessing "
                    f"(load_run(RUN).preprocessing), not a {type(prep).__name__}"
                )
            gate = build(spec, model, classifier=classifier, preprocessing=prep)
            gate.fit(fit_images).calibrate(calibration_images, target_fpr=target_fpr)
            return cls(classifier, gate)
        detector = build(RECOMMENDED, model)
        detector.fit(fit_images).calibrate(calibration_images, target_fpr=target_fpr)
        apply = detector_preprocessing
        if isinstance(apply, Preprocessing):
            apply = apply.apply
        return cls(classifier, detector, apply)

    def predict(self, images: Any, statistics: Stats | None = None) -> GuardDecision:
        """Labels with ``-1`` for rejected inputs, and the reason for each rejection.

        ``statistics``: the detector's statistics of the same images, when already computed
        (:mod:`genood.ood.statistics`); the detector then runs no model.
        """
        if statistics is not None:
            detector_input: Any = statistics
        elif self.detector_preprocessing is not None:
            detector_input = self.detector_preprocessing(images)
        else:
            detector_input = images
        detection = self.detector.detect(detector_input)
        predicted = np.asarray(self.classifier.predict(images), dtype=np.int64)
        if predicted.shape != detection.rejected.shape:
            raise ValueError(
                f"the classifier returned {predicted.shape} labels for "
                f"{detection.rejected.shape[0]} images"
            )
        labels = np.where(detection.rejected, REJECT, predicted)
        reasons: list[Rejection | None] = []
        names = list(detection.components or {})
        values = np.stack(list(detection.components.values())) if detection.components else None
        for i, (score, rejected) in enumerate(zip(detection.scores, detection.rejected)):
            if not rejected:
                reasons.append(None)
                continue
            component = component_value = None
            if values is not None:
                k = int(np.nanargmax(values[:, i])) if not np.isnan(values[:, i]).all() else 0
                component, component_value = names[k], float(values[k, i])
            reasons.append(
                Rejection(
                    detection.score_name,
                    float(score),
                    detection.threshold,
                    component,
                    component_value,
                )
            )
        return GuardDecision(labels, detection.rejected, predicted, detection.scores, reasons)

    def report(
        self,
        in_images: Any,
        in_labels: Any,
        ood_images: Any,
        in_statistics: Stats | None = None,
        ood_statistics: Stats | None = None,
    ) -> dict[str, Any]:
        """The gate's figures on labelled in-distribution images and on OOD images.

        Returns:
            ``in_rejection_rate`` (in-distribution inputs turned away), ``accuracy_accepted``
            (accuracy on the in-distribution inputs let through), ``accuracy_unguarded`` (the
            classifier alone), ``ood_rejection_rate`` (OOD inputs caught), the counts and the
            detector's name, threshold and target FPR.
        """
        truth = np.asarray(in_labels)
        inside = self.predict(in_images, in_statistics)
        if truth.shape != inside.labels.shape:
            raise ValueError(f"in_labels must have shape {inside.labels.shape}, got {truth.shape}")
        outside = self.predict(ood_images, ood_statistics)
        accepted = ~inside.rejected
        correct = inside.predicted == truth
        return {
            "score": self.detector.label,
            "threshold": self.detector.threshold_,
            "target_fpr": self.detector.target_fpr_,
            "n_in": len(truth),
            "n_ood": len(outside.labels),
            "in_rejection_rate": float(inside.rejected.mean()),
            "accuracy_accepted": float(correct[accepted].mean()) if accepted.any() else None,
            "accuracy_unguarded": float(correct.mean()),
            "ood_rejection_rate": float(outside.rejected.mean()),
        }
