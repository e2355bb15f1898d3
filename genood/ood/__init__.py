"""Out-of-distribution detection with likelihood models.

One class per score, all sharing :class:`~genood.ood.base.Detector`'s API (``fit``,
``decision_function``, ``calibrate``, ``predict``, ``get_params``, ``save``/``load``);
**higher score = more anomalous** for every one of them, and OOD is the positive class::

    import genood.ood as ood
    detector = ood.build("complexity+typicality", model)      # or ood.InputComplexity(model)
    detector.fit(held_out).calibrate(val, target_fpr=0.05)
    reject = detector.predict(images)
    ood.metrics.auroc(detector.decision_function(in_test), detector.decision_function(ood_test))

``ood.available()`` lists the scores; ``ood.build(spec, model, background=..., ensemble=...)``
builds one from its spec (``llr:2:mode``, ``dos:png``, ``a+b``). Detectors read the statistics
layer (:mod:`genood.ood.statistics`), which runs each model once per image set; the workflow
(:mod:`genood.ood.workflow`) fits, calibrates and evaluates several at once.

A new score is one file in this package (a :class:`Detector` subclass with a ``name``) plus
its import line below (importing the file registers the score).
"""

from genood.ood import metrics
from genood.ood.base import (
    SCORE_CONVENTION,
    Detection,
    Detector,
    NotFittedError,
    conformal_threshold,
)
from genood.ood.classifier import Classifier, SmallCNN
from genood.ood.combine import Combined
from genood.ood.complexity import InputComplexity, available_codecs, compressed_bits
from genood.ood.diffpath import DiffPath
from genood.ood.dose import DensityOfStates
from genood.ood.gradnorm import GradientNorms
from genood.ood.guard import REJECT, GuardDecision, GuardedClassifier, Rejection
from genood.ood.likelihood import Likelihood
from genood.ood.llr import HierarchicalLLR
from genood.ood.mahalanobis import Mahalanobis
from genood.ood.ratio import LikelihoodRatio, check_same_architecture, mutate
from genood.ood.reconstruction import DiffusionReconstruction
from genood.ood.registry import (
    RECOMMENDED,
    RECOMMENDED_GATE,
    RECOMMENDED_LOGITS_GATE,
    available,
    build,
    detector_types,
    parse,
)
from genood.ood.regret import LikelihoodRegret
from genood.ood.softmax import Energy, MaxSoftmax
from genood.ood.statistics import Statistics
from genood.ood.typicality import Typicality
from genood.ood.validation import fingerprint, validate_images
from genood.ood.waic import WAIC

load = Detector.load

__all__ = [
    "RECOMMENDED",
    "RECOMMENDED_GATE",
    "RECOMMENDED_LOGITS_GATE",
    "REJECT",
    "SCORE_CONVENTION",
    "WAIC",
    "Classifier",
    "Combined",
    "DensityOfStates",
    "Detection",
    "Detector",
    "DiffPath",
    "DiffusionReconstruction",
    "Energy",
    "GradientNorms",
    "GuardDecision",
    "GuardedClassifier",
    "HierarchicalLLR",
    "InputComplexity",
    "Likelihood",
    "LikelihoodRatio",
    "LikelihoodRegret",
    "Mahalanobis",
    "MaxSoftmax",
    "NotFittedError",
    "Rejection",
    "SmallCNN",
    "Statistics",
    "Typicality",
    "available",
    "available_codecs",
    "build",
    "check_same_architecture",
    "compressed_bits",
    "conformal_threshold",
    "detector_types",
    "fingerprint",
    "load",
    "metrics",
    "mutate",
    "parse",
    "validate_images",
]
