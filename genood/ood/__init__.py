"""Out-of-distribution detection with likelihood models.

One class per score, all sharing :class:`~genood.ood.base.Detector`'s API (``fit``,
``score_samples``, ``calibrate``, ``predict``, ``save``/``load``); **higher score = more
anomalous** for every one of them::

    from genood.ood import LikelihoodRatio, metrics
    detector = LikelihoodRatio(model, background).fit(held_out).calibrate(val, target_fpr=0.05)
    reject = detector.predict(images)
    metrics.auroc(detector.score_samples(in_test), detector.score_samples(ood_test))

* :class:`Likelihood`: bits/dim (Bishop 1994).
* :class:`Typicality`: distance to the typical bits/dim, single inputs and batches
  (Nalisnick et al. 2019b).
* :class:`LikelihoodRatio`: against a background model of mutated inputs (Ren et al. 2019).
* :class:`InputComplexity`: bits/dim minus a lossless codec's (Serra et al. 2020).
* :class:`WAIC`: ensemble mean minus variance of the log-likelihood (Choi et al. 2018).
* :class:`Combined`: flags an input extreme on *any* of several scores (robust z-scores),
  e.g. ``Combined([InputComplexity(model), Typicality(model)])``.
* :class:`HierarchicalLLR`: ELBO minus the L^{>k} bound of a hierarchical VAE
  (Havtorn et al. 2021).
* :class:`DensityOfStates`: how typical the *vector* of the model's terms and the input's
  compressed length is, a joint density estimate (Morningstar et al. 2021).
* :class:`GuardedClassifier`: a classifier that answers ``-1`` for rejected inputs, and
  :class:`Classifier`, a small CNN to guard.
"""

from genood.ood import metrics
from genood.ood.base import (
    SCORE_CONVENTION,
    Detection,
    Detector,
    NotFittedError,
    ScoreCache,
    conformal_threshold,
    detector_types,
    validate_images,
)
from genood.ood.classifier import Classifier, SmallCNN
from genood.ood.combine import Combined
from genood.ood.complexity import InputComplexity, available_codecs, compressed_bits
from genood.ood.dose import DensityOfStates
from genood.ood.guard import REJECT, GuardDecision, GuardedClassifier, Rejection
from genood.ood.likelihood import Likelihood
from genood.ood.llr import HierarchicalLLR
from genood.ood.ratio import LikelihoodRatio, check_same_architecture, mutate
from genood.ood.typicality import Typicality
from genood.ood.waic import WAIC

load = Detector.load

__all__ = [
    "REJECT",
    "SCORE_CONVENTION",
    "WAIC",
    "Classifier",
    "Combined",
    "DensityOfStates",
    "Detection",
    "Detector",
    "GuardDecision",
    "GuardedClassifier",
    "HierarchicalLLR",
    "InputComplexity",
    "Likelihood",
    "LikelihoodRatio",
    "NotFittedError",
    "Rejection",
    "ScoreCache",
    "SmallCNN",
    "Typicality",
    "available_codecs",
    "check_same_architecture",
    "compressed_bits",
    "conformal_threshold",
    "detector_types",
    "load",
    "metrics",
    "mutate",
    "validate_images",
]
