"""The density gate: rejected inputs get -1 and a reason; the report's three figures."""

from __future__ import annotations

import numpy as np
import pytest

from genood.ood import REJECT, GuardedClassifier, NotFittedError, Typicality


class _Constant:
    """A classifier that always answers 3 (the guard must not care what it is)."""

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.full(len(images), 3)


@pytest.fixture
def detector(model, data) -> Typicality:
    return Typicality(model).fit(data["fit"]).calibrate(data["val"], target_fpr=0.05)


def test_rejected_inputs_get_minus_one_and_a_reason(detector, data) -> None:
    guard = GuardedClassifier(_Constant(), detector)
    batch = np.concatenate([data["test"][:50], data["noise"][:10]])
    decision = guard.predict(batch)
    assert decision.rejected[50:].all()
    assert (decision.labels[50:] == REJECT).all()
    assert (decision.labels[~decision.rejected] == 3).all()
    assert (decision.predicted == 3).all()
    reason = decision.reasons[55]
    assert reason.score == "typicality" and reason.threshold == detector.threshold_
    assert reason.value == decision.scores[55] > reason.threshold
    assert "typicality score" in str(reason) and "> threshold" in str(reason)
    assert all(r is None for r, rej in zip(decision.reasons, decision.rejected) if not rej)


def test_report_figures(detector, data) -> None:
    labels = np.where(np.arange(len(data["test"])) % 2 == 0, 3, 1)
    report = GuardedClassifier(_Constant(), detector).report(data["test"], labels, data["noise"])
    assert report["in_rejection_rate"] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(labels))
    assert report["ood_rejection_rate"] == 1.0
    assert report["accuracy_unguarded"] == 0.5
    assert 0.4 < report["accuracy_accepted"] < 0.6
    assert report["score"] == "typicality" and report["target_fpr"] == 0.05


def test_preprocessing_for_the_detector(detector, data) -> None:
    """The classifier sees 6x6 crops; the detector sees them padded back to the model's 8x8."""
    crops = data["noise"][:5, :, 1:7, 1:7]
    pad = lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # noqa: E731
    decision = GuardedClassifier(_Constant(), detector, pad).predict(crops)
    assert decision.rejected.all()
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        GuardedClassifier(_Constant(), detector).predict(crops)


def test_needs_a_calibrated_detector_and_a_predictor(model, data) -> None:
    with pytest.raises(NotFittedError, match="calibrate"):
        GuardedClassifier(_Constant(), Typicality(model).fit(data["fit"]))
    with pytest.raises(TypeError, match="predict"):
        GuardedClassifier(object(), Typicality(model))


def test_the_recommended_guard_uses_the_recommended_detector(model, data) -> None:
    from genood.ood import RECOMMENDED

    guard = GuardedClassifier.recommended(_Constant(), model, data["fit"], data["val"], 0.1)
    assert guard.detector.label == RECOMMENDED and guard.detector.target_fpr_ == 0.1
    decision = guard.predict(np.concatenate([data["test"][:200], data["noise"][:50]]))
    assert decision.rejected[200:].mean() > 0.9 and decision.rejected[:200].mean() < 0.25


def test_with_a_classifier_the_recommended_guard_is_the_recommended_gate(
    model, classifier, data
) -> None:
    """A classifier that gives its logits gets RECOMMENDED_GATE, which reads them and takes the
    classifier's images; a plain function as the model's preprocessing is refused there."""
    from genood.data.transforms import Preprocessing
    from genood.ood import RECOMMENDED_GATE

    guard = GuardedClassifier.recommended(classifier, model, data["fit"], data["val"], 0.1)
    assert guard.detector.label == RECOMMENDED_GATE and guard.detector.reads_loaded_images
    assert guard.detector_preprocessing is None
    decision = guard.predict(np.concatenate([data["test"][:200], data["noise"][:50]]))
    assert decision.rejected[200:].mean() > 0.9 and decision.rejected[:200].mean() < 0.25
    same = GuardedClassifier.recommended(
        classifier, model, data["fit"], data["val"], 0.1, Preprocessing()
    )
    assert same.detector.threshold_ == guard.detector.threshold_
    with pytest.raises(TypeError, match="Preprocessing"):
        GuardedClassifier.recommended(classifier, model, data["fit"], data["val"], 0.1, np.copy)


def test_a_classifier_with_logits_but_no_features_gets_the_logits_gate(
    model, classifier, data
) -> None:
    """A user's own classifier that gives logits only still gets a gate that reads them."""
    from types import SimpleNamespace

    from genood.ood import RECOMMENDED_LOGITS_GATE

    api = ("logits", "predict", "image_shape", "num_classes", "state_dict", "describe")
    logits_only = SimpleNamespace(**{name: getattr(classifier, name) for name in api})
    guard = GuardedClassifier.recommended(logits_only, model, data["fit"], data["val"], 0.1)
    assert guard.detector.label == RECOMMENDED_LOGITS_GATE
    assert "mahalanobis" not in RECOMMENDED_LOGITS_GATE
