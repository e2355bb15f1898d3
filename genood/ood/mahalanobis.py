"""The Mahalanobis score: the distance of a classifier's features to its nearest class.

Lee, Lee, Lee & Shin, "A simple unified framework for detecting out-of-distribution samples and
adversarial attacks" (NeurIPS 2018; code: github.com/pokaxpoka/deep_Mahalanobis_detector,
``lib_generation.sample_estimator`` and ``get_Mahalanobis_score``) fit one Gaussian per class to
a trained classifier's features, with class means ``mu_c`` and one covariance ``Sigma`` shared
by all classes, and score an input by its nearest class,

    s(x) = min_c (f(x) - mu_c)^T Sigma^{-1} (f(x) - mu_c),

the squared Mahalanobis distance (the paper's confidence is ``-s(x) / 2``; higher ``s`` = more
anomalous here, as for every genood score). ``f(x)`` is the classifier's penultimate layer
(:meth:`genood.ood.classifier.Classifier.features`), read on the images as loaded like ``msp``
and ``energy``.

What genood keeps of the paper, and what it leaves out:

* **kept:** class-conditional means and a tied covariance, the minimum over classes, the last
  hidden layer;
* **class labels:** the paper estimates ``mu_c`` on the training set with its true labels; a
  genood detector fits on held-out in-distribution *statistics*, which carry no labels, so each
  fitting image counts for the class the classifier predicts (its logits are read anyway). A
  class nobody is predicted as gets no Gaussian;
* **covariance:** the paper's ``sklearn.covariance.EmpiricalCovariance`` on tens of thousands of
  images; fits here are often a few hundred images against 128 features, so the shared
  covariance is the Ledoit-Wolf shrinkage estimate (Ledoit & Wolf 2004), which equals the
  empirical one as the fit grows and stays invertible when it is small. Fixed, not tuned;
* **left out:** the input pre-processing (a signed-gradient step of size ``epsilon``) and the
  logistic-regression weights over layers, both of which the paper chooses on OOD validation
  data: genood never fits a score on OOD data (this is the "vanilla" Mahalanobis of the
  benchmarks that also refuse OOD tuning, e.g. OpenOOD's MDS).

Cost: one classifier forward pass per image (the features and the logits come from the same
network; each is cached on disk like a model pass) and a ``K x D x D`` product per image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genood.ood.softmax import (
    PREFIX,
    ClassifierOutputs,
    ClassifierScore,
    classifier_logits,
    gives_logits,
)
from genood.ood.statistics import Requirement, Statistics, Stats
from genood.ood.validation import fingerprint


class ClassifierFeatures(ClassifierOutputs):
    """A classifier's penultimate features, ``classifier/feature.j``, from anything with
    ``features(images, batch_size) -> (N, D)`` and the API of
    :data:`~genood.ood.softmax.CLASSIFIER_API`."""

    method = "features"
    stat = "feature"


def classifier_features(classifier: Any) -> ClassifierFeatures:
    """The requirement ``classifier/feature.j`` of ``classifier``."""
    return ClassifierFeatures(PREFIX, None, classifier, fingerprint(classifier))


def gives_features(classifier: Any) -> bool:
    """Whether ``classifier`` has what ``mahalanobis`` reads: the logits' API and
    ``features(images)``."""
    return gives_logits(classifier) and hasattr(classifier, "features")


def shrunk_precision(centred: np.ndarray) -> np.ndarray:
    """The inverse of the Ledoit-Wolf covariance of rows already centred on their class means."""
    from sklearn.covariance import ledoit_wolf

    covariance, _ = ledoit_wolf(centred, assume_centered=True)
    return np.linalg.pinv(covariance, hermitian=True)


class Mahalanobis(ClassifierScore):
    """``s(x) = min_c (f(x) - mu_c)^T Sigma^{-1} (f(x) - mu_c)`` on a classifier's features.

    Args:
        classifier: a :class:`~genood.ood.classifier.Classifier` (anything with its ``logits``
            and ``features``).
        store: see :class:`~genood.ood.base.Detector`.

    Attributes:
        means_: ``(K', D)`` the class means of the classes predicted at least once in ``fit``.
        classes_: ``(K',)`` those classes.
        precision_: ``(D, D)`` the inverse shared covariance.
    """

    name = "mahalanobis"
    summary = (
        "squared Mahalanobis distance of the classifier's penultimate features to the nearest "
        "class mean, one shared covariance (Lee et al. 2018, without the OOD-tuned input "
        "noise and layer weights); fitted on predicted classes"
    )
    unit = "squared Mahalanobis distance"
    # its own fitting images sit closer to the means and covariance they shaped (128 features
    # against a few hundred images), so a combination takes its reference scores elsewhere
    memorises_fit_images = True

    def __init__(self, classifier: Any, *, store: Statistics | None = None) -> None:
        super().__init__(classifier, store=store)
        if not gives_features(classifier):
            raise TypeError(
                f"the mahalanobis score reads a classifier's features(images) (genood.ood."
                f"Classifier, from `genood train-classifier`), got {type(classifier).__name__} "
                "without features"
            )
        self.means_: np.ndarray | None = None
        self.classes_: np.ndarray | None = None
        self.precision_: np.ndarray | None = None

    def requirements(self) -> list[Requirement]:
        return [classifier_logits(self.classifier), classifier_features(self.classifier)]

    def features(self, stats: Stats) -> np.ndarray:
        """``(N, D)`` features from the statistics (``feature.0`` .. ``feature.<D-1>``)."""
        first = self.stat(stats, f"{PREFIX}/feature.0")  # names the missing statistic
        columns = [first]
        while f"{PREFIX}/feature.{len(columns)}" in stats:
            columns.append(self.stat(stats, f"{PREFIX}/feature.{len(columns)}"))
        return np.stack(columns, axis=1)

    def _fit(self, stats: Stats) -> None:
        features = self.features(stats)
        if len(features) < 2:
            raise ValueError(f"mahalanobis needs at least 2 fitting images, got {len(features)}")
        predicted = self.logits(stats).argmax(axis=1)
        classes = np.unique(predicted)
        means = np.stack([features[predicted == c].mean(axis=0) for c in classes])
        centred = features - means[np.searchsorted(classes, predicted)]
        self.classes_, self.means_ = classes.astype(np.int64), means
        self.precision_ = shrunk_precision(centred)

    def _score(self, stats: Stats) -> np.ndarray:
        assert self.means_ is not None and self.precision_ is not None
        features = self.features(stats)
        if features.shape[1] != self.precision_.shape[0]:
            raise ValueError(
                f"mahalanobis was fitted on {self.precision_.shape[0]} features, got "
                f"{features.shape[1]}: score with the classifier it was fitted with"
            )
        best = np.full(len(features), np.inf)
        for mean in self.means_:
            diff = features - mean
            best = np.minimum(best, np.einsum("ij,jk,ik->i", diff, self.precision_, diff))
        return best

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.means_ is not None and self.precision_ is not None
        assert self.classes_ is not None
        arrays = {"means": self.means_, "classes": self.classes_, "precision": self.precision_}
        return {}, arrays

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.means_ = np.asarray(arrays["means"], np.float64)
        self.classes_ = np.asarray(arrays["classes"], np.int64)
        self.precision_ = np.asarray(arrays["precision"], np.float64)
