"""mahalanobis: the classifier-feature score, checked against a hand computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf

import genood.ood as ood
from genood.ood.mahalanobis import ClassifierFeatures, Mahalanobis, classifier_features

from .conftest import SHAPE


class FixedFeatures:
    """A stand-in classifier: features are the mean pixel of each quarter of the image (4 of
    them), logits a fixed linear map of the features, so the hand computation below is exact."""

    image_shape = SHAPE
    num_classes = 3
    weights = np.array([[4.0, -1.0, 0.0], [0.0, 3.0, -2.0], [-1.0, 0.0, 5.0], [1.0, 1.0, 1.0]])

    def features(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        x = images.astype(np.float64) / 255.0
        h, w = images.shape[-2] // 2, images.shape[-1] // 2
        quarters = [x[..., :h, :w], x[..., :h, w:], x[..., h:, :w], x[..., h:, w:]]
        return np.stack([q.mean((1, 2, 3)) for q in quarters], axis=1)

    def logits(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        return self.features(images) @ self.weights

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"weights": torch.from_numpy(self.weights)}

    def describe(self) -> dict[str, object]:
        return {"model": "FixedFeatures"}


def _hand(fit: np.ndarray, test: np.ndarray, fixed: FixedFeatures) -> np.ndarray:
    """Predicted-class means, the Ledoit-Wolf covariance of the centred features, and the
    nearest class's squared distance, one image and one class at a time."""
    features, predicted = fixed.features(fit), fixed.logits(fit).argmax(axis=1)
    means = {c: features[predicted == c].mean(axis=0) for c in set(predicted.tolist())}
    centred = np.stack([f - means[c] for f, c in zip(features, predicted, strict=True)])
    precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(centred).covariance_)
    return np.array(
        [
            min(float((f - m) @ precision @ (f - m)) for m in means.values())
            for f in fixed.features(test)
        ]
    )


def test_scores_match_the_hand_computation(data) -> None:
    fixed = FixedFeatures()
    detector = Mahalanobis(fixed).fit(data["fit"])
    want = _hand(data["fit"], data["test"][:50], fixed)
    np.testing.assert_allclose(detector.decision_function(data["test"][:50]), want, rtol=1e-8)


def test_only_predicted_classes_get_a_gaussian(data) -> None:
    fixed = FixedFeatures()
    detector = Mahalanobis(fixed).fit(data["fit"])
    predicted = np.unique(fixed.logits(data["fit"]).argmax(axis=1))
    np.testing.assert_array_equal(detector.classes_, predicted)
    assert detector.means_ is not None and detector.means_.shape == (len(predicted), 4)


def test_fewer_fitting_images_than_features_still_score(classifier, data) -> None:
    # 10 images against the tiny classifier's 128 features: the empirical covariance is
    # singular, the shrunk one is not
    detector = Mahalanobis(classifier).fit(data["fit"][:10])
    scores = detector.decision_function(data["test"][:20])
    assert np.isfinite(scores).all() and (scores >= 0).all()


def test_obvious_outliers_are_farther(classifier, data) -> None:
    detector = Mahalanobis(classifier).fit(data["fit"])
    inside = detector.decision_function(data["test"])
    for name in ("noise", "constant"):
        assert np.median(detector.decision_function(data[name])) > np.quantile(inside, 0.9), name


def test_a_trained_classifier_gives_its_features(classifier, data) -> None:
    images = data["test"][:16]
    features = classifier.features(images)
    assert features.shape == (16, 128) and features.dtype == np.float64
    assert (features >= 0).all()  # after the ReLU
    # the logits are the last linear layer of exactly these features
    last = classifier.network.head[-1]
    with torch.no_grad():
        logits = last(torch.from_numpy(features).float()).double().numpy()
    np.testing.assert_allclose(logits, classifier.logits(images), rtol=1e-5, atol=1e-5)


def test_the_requirement_reads_loaded_images_and_is_keyed_by_the_weights(classifier) -> None:
    requirement = classifier_features(classifier)
    assert isinstance(requirement, ClassifierFeatures) and requirement.on_loaded_images
    assert requirement.key.startswith("features-")
    assert requirement.key != classifier_features(FixedFeatures()).key


def test_what_is_refused_names_the_fix(model, classifier, data) -> None:
    fixed = FixedFeatures()
    api = ("logits", "image_shape", "num_classes", "state_dict", "describe")
    logits_only = SimpleNamespace(**{name: getattr(fixed, name) for name in api})
    with pytest.raises(TypeError, match="features"):
        Mahalanobis(logits_only)
    with pytest.raises(ValueError, match="needs a classifier"):
        ood.build("mahalanobis", model)
    with pytest.raises(ValueError, match="at least 2"):
        Mahalanobis(classifier).fit(data["fit"][:1])


def test_a_different_classifier_is_refused_at_scoring(classifier, data) -> None:
    detector = Mahalanobis(classifier).fit(data["fit"])
    stats = Mahalanobis(FixedFeatures()).statistics(data["test"][:5])
    with pytest.raises(ValueError, match="fitted on 128 features"):
        detector.decision_function(stats)
