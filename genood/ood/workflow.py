"""One detection workflow: statistics once per set, fit, calibrate, evaluate every OOD set.

What ``genood detect`` and ``genood reproduce`` share:

1. :func:`gather_sets` computes the union of the detectors' requirements once per *whole* image
   set through a :class:`~genood.ood.statistics.Statistics` store (each set through each model
   once, read back from the run folder the next time);
2. the in-distribution statistics are sliced into disjoint fit, calibration and evaluation
   parts (:func:`holdout_split`, or the caller's own protocol);
3. :func:`evaluate` fits and calibrates every detector on in-distribution data only, scores the
   evaluation part and every OOD set with the same fitted detectors (nothing is refitted per
   set: this is how a deployed detector meets inputs nobody tuned it on), and computes every
   metric of :mod:`genood.ood.metrics`, OOD as the positive class, with bootstrap intervals;
4. :func:`guard_reports` puts each detector in front of a classifier;
5. :func:`write` stores ``detection.json``, ``scores.npz`` and the fitted detectors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genood.io import json_default, save_npz_atomic, write_text_atomic
from genood.ood import metrics
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, gather_views
from genood.ood.statistics import count as images_in

# Below this many OOD images an AUROC is reported with a warning: one image gives 0 or 1.
MIN_OOD_IMAGES = 30


@dataclass
class Split:
    """Disjoint index sets of an in-distribution set: fit, calibrate, evaluate."""

    fit: np.ndarray
    calibration: np.ndarray
    evaluation: np.ndarray


def holdout_split(count: int, fraction: float, seed: int = 0) -> Split:
    """Hold out ``fraction`` of ``count`` images (a seeded permutation), halved into fit and
    calibration; the rest is evaluated."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    held = round(count * fraction)
    if held < 2 or held >= count:
        raise ValueError(f"cannot hold out {fraction:.0%} of {count} images")
    order = np.random.default_rng(seed).permutation(count)
    half = held // 2
    return Split(np.sort(order[:half]), np.sort(order[half:held]), np.sort(order[held:]))


def halves(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``count`` held-out images into a fitting and a calibration half."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[: count // 2]), np.sort(order[count // 2 :])


def requirements_of(detectors: Mapping[str, Detector]) -> list[Requirement]:
    """Every detector's requirements, in order (the store computes duplicates once)."""
    return [r for detector in detectors.values() for r in detector.requirements()]


def gather_sets(
    detectors: Mapping[str, Detector],
    sets: Mapping[str, np.ndarray],
    store: Statistics,
    loaded: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Stats]:
    """The statistics every detector needs, for each whole set (named in the store's index).

    ``sets`` are the images as the models take them (the run's preprocessing applied);
    ``loaded`` the same images as loaded, by the same names, for the requirements that read
    those (:attr:`~genood.ood.statistics.Requirement.on_loaded_images`, a classifier's
    logits). Without ``loaded`` every requirement reads ``sets``.
    """
    needed = requirements_of(detectors)
    return {
        name: gather_views(store, needed, images, None if loaded is None else loaded[name], name)
        for name, images in sets.items()
    }


@dataclass
class DetectionResults:
    """What :func:`evaluate` found.

    Attributes:
        per_set: ``{OOD set: {score: metrics.evaluate(...) + unit, target_fpr}}``.
        in_scores: ``{score: (N_in,)}`` on the in-distribution evaluation part.
        out_scores: ``{OOD set: {score: (N_set,)}}``.
        detectors: the fitted and calibrated detectors.
        warnings: notes on the figures (too few OOD images for an AUROC to mean much).
    """

    per_set: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    in_scores: dict[str, np.ndarray] = field(default_factory=dict)
    out_scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    detectors: dict[str, Detector] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        """The first OOD set: the main pair."""
        return next(iter(self.per_set))

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per-score metrics on the main pair."""
        return self.per_set[self.headline]


def fit_calibrate(
    detectors: Mapping[str, Detector], fit: Stats, calibration: Stats, target_fpr: float
) -> None:
    """Fit each detector on ``fit`` and calibrate it on ``calibration`` (both in-distribution)."""
    for detector in detectors.values():
        detector.fit(fit).calibrate(calibration, target_fpr)


def evaluate(
    detectors: Mapping[str, Detector],
    evaluation: Stats,
    ood: Mapping[str, Stats],
    bootstrap: int = 0,
    seed: int = 0,
    fit: Stats | None = None,
    calibration: Stats | None = None,
    target_fpr: float = 0.05,
) -> DetectionResults:
    """Metrics of every detector on every OOD set against the in-distribution evaluation part.

    With ``fit`` and ``calibration`` the detectors are fitted and calibrated first; without,
    they must be already (loaded ones, say).
    """
    if fit is not None and calibration is not None:
        fit_calibrate(detectors, fit, calibration, target_fpr)
    results = DetectionResults(detectors=dict(detectors))
    for name, detector in detectors.items():
        results.in_scores[name] = detector.decision_function(evaluation)
    for set_name, stats in ood.items():
        n = images_in(stats)
        if n < MIN_OOD_IMAGES:
            results.warnings.append(
                f"{set_name} has {n} image(s): its AUROC can only take a few values (one image "
                f"gives 0 or 1); use at least {MIN_OOD_IMAGES}"
            )
        results.out_scores[set_name] = {}
        results.per_set[set_name] = {}
        for name, detector in detectors.items():
            scores = detector.decision_function(stats)
            results.out_scores[set_name][name] = scores
            found = metrics.evaluate(
                results.in_scores[name],
                scores,
                detector.threshold_,
                bootstrap=bootstrap,
                seed=seed,
            )
            found.update(unit=detector.unit, target_fpr=detector.target_fpr_)
            results.per_set[set_name][name] = found
    return results


def guard_reports(
    classifier: Any,
    detectors: Mapping[str, Detector],
    in_images: np.ndarray,
    in_labels: np.ndarray,
    in_stats: Stats,
    ood: Mapping[str, tuple[np.ndarray, Stats]],
) -> dict[str, dict[str, Any]]:
    """Each detector as a density gate in front of ``classifier`` (see :class:`GuardedClassifier`).

    ``in_images`` / ``ood`` images are what the classifier sees; the statistics are what the
    detectors read (the run's preprocessing of the same images), so no model runs again.
    """
    from genood.ood.guard import GuardedClassifier

    reports = {}
    first = next(iter(ood))
    for name, detector in detectors.items():
        guarded = GuardedClassifier(classifier, detector)
        report = guarded.report(in_images, in_labels, ood[first][0], in_stats, ood[first][1])
        report["ood_rejection_rates"] = {
            set_name: float(guarded.predict(images, statistics=stats).rejected.mean())
            for set_name, (images, stats) in ood.items()
        }
        reports[name] = report
    return reports


def write(
    folder: Path,
    document: dict[str, Any],
    results: DetectionResults,
    extra_arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """``detection.json`` (``document``), ``scores.npz`` and ``detectors/<score>/``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=json_default) + "\n"
    write_text_atomic(folder / "detection.json", text)
    arrays = dict(extra_arrays or {})
    sets = list(results.out_scores)
    for name in results.detectors:
        key = name.replace(":", "-")
        arrays[f"{key}_in"] = results.in_scores[name]
        for index, set_name in enumerate(sets):
            suffix = "out" if index == 0 else f"out_{slug(set_name)}"
            arrays[f"{key}_{suffix}"] = results.out_scores[set_name][name]
    save_npz_atomic(folder / "scores.npz", **arrays)
    for name, detector in results.detectors.items():
        detector.save(folder / "detectors" / name.replace(":", "-"))


def slug(spec: str) -> str:
    """A file-name-safe form of a set spec."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")
