"""Fit, calibrate and evaluate several detectors on one in-distribution / OOD pair.

What ``genood detect`` and the experiment driver share: build detectors by name, split the
held-out in-distribution images into a fitting part, a calibration part and an evaluation part
(disjoint), score everything once per model (:class:`~genood.ood.base.ScoreCache`), and compute
every metric of :mod:`genood.ood.metrics`, OOD as the positive class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genood.models.base import LikelihoodModel
from genood.ood import metrics
from genood.ood.base import Detector, ScoreCache

SCORES = ("likelihood", "typicality", "ratio", "complexity", "waic", "dos", "llr")
WITH_CODEC = ("complexity", "dos")


def parse_scores(text: str | Sequence[str]) -> list[str]:
    """``"likelihood,complexity:jpegxl,llr:2"`` -> ``["likelihood", "complexity:jpegxl", "llr:2"]``,
    checked.

    ``a+b`` names the :class:`~genood.ood.combine.Combined` score of ``a`` and ``b``.
    """
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    names = [s for s in names if s]
    if not names:
        raise ValueError(f"no score given; choose from {', '.join(SCORES)}")
    for name in names:
        parts = name.split("+")
        if len(parts) != len(set(parts)):
            raise ValueError(f"a combination lists a score twice: {name!r}")
        for part in parts:
            base, _, option = part.partition(":")
            if base not in SCORES:
                raise ValueError(f"unknown score {part!r}; known: {', '.join(SCORES)}")
            if option and base == "llr":
                k, _, variant = option.partition(":")
                if not k.isdigit() or int(k) < 1 or variant not in ("", "mode"):
                    raise ValueError(
                        f"llr takes llr:K or llr:K:mode with a number of latents K >= 1, "
                        f"got {part!r}"
                    )
            elif option and base not in WITH_CODEC:
                raise ValueError(
                    f"only complexity and dos (complexity:CODEC) and llr (llr:K) take an "
                    f"option, got {part!r}"
                )
    if len(set(names)) != len(names):
        raise ValueError(f"score listed twice in {names}")
    return names


def build_detector(
    name: str,
    model: LikelihoodModel,
    *,
    background: LikelihoodModel | None = None,
    ensemble: Sequence[LikelihoodModel] | None = None,
    codec: str = "png",
    cache: ScoreCache | None = None,
    batch_size: int = 256,
    progress: bool = False,
    workers: int = 1,
) -> Detector:
    """The detector called ``name`` (see :data:`SCORES`).

    ``complexity:CODEC`` and ``dos:CODEC`` pick a codec (``dos:none``: the model's statistics
    only); without one, ``codec`` is used. ``dos:CODEC:terms`` uses the model's terms without
    their parts (no per-level split of a flow's distribution term). ``llr:K`` draws the ``K``
    lowest latents from the conditional prior, ``llr:K:mode`` takes its mean. ``a+b`` builds the
    :class:`~genood.ood.combine.Combined` score of ``a`` and ``b``.

    Raises:
        ValueError: when ``ratio`` has no background model or ``waic`` no ensemble.
    """
    from genood.ood.combine import Combined
    from genood.ood.complexity import InputComplexity
    from genood.ood.dose import DensityOfStates
    from genood.ood.likelihood import Likelihood
    from genood.ood.ratio import LikelihoodRatio
    from genood.ood.typicality import Typicality
    from genood.ood.waic import WAIC

    common: dict[str, Any] = {"batch_size": batch_size, "progress": progress, "cache": cache}
    if "+" in name:
        options = {"background": background, "ensemble": ensemble, "codec": codec}
        parts = [
            build_detector(part, model, **options, **common, workers=workers)
            for part in name.split("+")
        ]
        return Combined(parts, **common)
    base, _, option = name.partition(":")
    if base == "likelihood":
        return Likelihood(model, **common)
    if base == "typicality":
        return Typicality(model, **common)
    if base == "ratio":
        if background is None:
            raise ValueError("the ratio score needs a background model")
        return LikelihoodRatio(model, background, **common)
    if base == "complexity":
        return InputComplexity(model, option or codec, workers=workers, **common)
    if base == "dos":
        dos_codec, _, variant = option.partition(":")
        if variant not in ("", "terms"):
            raise ValueError(f"unknown dos variant {variant!r} in {name!r}; known: terms")
        chosen = dos_codec or codec
        return DensityOfStates(
            model,
            None if chosen == "none" else chosen,
            parts=variant != "terms",
            workers=workers,
            **common,
        )
    if base == "llr":
        from genood.ood.llr import HierarchicalLLR

        if not hasattr(model, "llr"):
            raise ValueError(
                f"the llr score needs a hierarchical VAE (model 'hvae'), got {type(model).__name__}"
            )
        k, _, variant = option.partition(":")
        return HierarchicalLLR(
            model,
            k=int(k or 1),
            prior_mode=variant == "mode",
            batch_size=batch_size,
            progress=progress,
        )
    if base == "waic":
        if not ensemble or len(ensemble) < 2:
            raise ValueError("the waic score needs an ensemble of at least 2 models")
        return WAIC(list(ensemble), **common)
    raise ValueError(f"unknown score {name!r}; known: {', '.join(SCORES)}")


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


@dataclass
class DetectionResults:
    """Per-score metrics (``metrics.evaluate`` plus the detector's unit) and per-sample scores."""

    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_scores: dict[str, np.ndarray] = field(default_factory=dict)
    out_scores: dict[str, np.ndarray] = field(default_factory=dict)
    detectors: dict[str, Detector] = field(default_factory=dict)


def evaluate_detectors(
    detectors: dict[str, Detector],
    fit_images: np.ndarray,
    calibration_images: np.ndarray,
    in_images: np.ndarray,
    out_images: np.ndarray,
    target_fpr: float = 0.05,
    bootstrap: int = 0,
    seed: int = 0,
) -> DetectionResults:
    """Fit, calibrate and score every detector; compute every metric at its threshold."""
    results = DetectionResults(detectors=dict(detectors))
    for name, detector in detectors.items():
        detector.fit(fit_images).calibrate(calibration_images, target_fpr)
        results.in_scores[name] = detector.score_samples(in_images)
    results.metrics, results.out_scores = evaluate_fitted(
        detectors, results.in_scores, out_images, bootstrap=bootstrap, seed=seed
    )
    return results


def evaluate_fitted(
    detectors: dict[str, Detector],
    in_scores: dict[str, np.ndarray],
    out_images: np.ndarray,
    bootstrap: int = 0,
    seed: int = 0,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics of already fitted and calibrated detectors on one more OOD set.

    Nothing is refitted: this is how a deployed detector meets inputs nobody tuned it on.

    Returns:
        per-score metrics (as :func:`evaluate_detectors`) and per-score OOD scores.
    """
    metrics_by_score: dict[str, dict[str, Any]] = {}
    out_scores: dict[str, np.ndarray] = {}
    for name, detector in detectors.items():
        out_scores[name] = detector.score_samples(out_images)
        values = metrics.evaluate(
            in_scores[name], out_scores[name], detector.threshold_, bootstrap=bootstrap, seed=seed
        )
        values.update(unit=detector.unit, target_fpr=detector.target_fpr_)
        metrics_by_score[name] = values
    return metrics_by_score, out_scores


def format_robustness(table: dict[str, dict[str, dict[str, Any]]], title: str = "") -> str:
    """Score x OOD set: ``AUROC / share caught at the calibrated threshold`` per cell."""
    sets = list(table)
    scores = list(next(iter(table.values())))
    cells = [
        [name]
        + [
            f"{table[s][name]['auroc']:.3f} / {table[s][name].get('tpr', float('nan')):.0%}"
            for s in sets
        ]
        + [f"{min(table[s][name]['auroc'] for s in sets):.3f}"]
        for name in scores
    ]
    footer = "cells: AUROC (OOD positive) / share of the OOD set rejected at the threshold"
    return _text_table(["score", *sets, "worst AUROC"], cells, title, footer)


def format_table(results: dict[str, dict[str, Any]], title: str = "") -> str:
    """A plain-text table, score x metric, with the positive-class convention stated."""
    header = [
        "score",
        "AUROC",
        "AUPR-in",
        "AUPR-out",
        "FPR@95",
        "threshold",
        "FPR",
        "TPR",
        "det.acc",
    ]
    rows = []
    for name, m in results.items():
        auroc = f"{m['auroc']:.4f}"
        if "auroc_ci" in m:
            auroc += f" [{m['auroc_ci'][0]:.4f}, {m['auroc_ci'][1]:.4f}]"
        rows.append(
            [
                name,
                auroc,
                f"{m['aupr_in']:.4f}",
                f"{m['aupr_out']:.4f}",
                f"{m['fpr95']:.4f}",
                f"{m.get('threshold', float('nan')):.4g}",
                f"{m.get('fpr', float('nan')):.4f}",
                f"{m.get('tpr', float('nan')):.4f}",
                f"{m.get('detection_accuracy', float('nan')):.4f}",
            ]
        )
    footer = (
        "OOD is the positive class (AUROC, AUPR-out, FPR@95); scores: higher = more anomalous; "
        "FPR/TPR/det.acc at the threshold calibrated on held-out in-distribution images"
    )
    return _text_table(header, rows, title, footer)


def _text_table(header: list[str], rows: list[list[str]], title: str, footer: str) -> str:
    """Left-aligned columns under a dashed rule, with an optional title and a footer line."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    lines.append(footer)
    return "\n".join(lines)
