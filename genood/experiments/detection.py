"""The detection table of a reproduction: every detector a budget names, one protocol.

Protocol (stated in the report): each detector is fitted on in-distribution *training* images
(at most ``FIT_IMAGES``), calibrated to a 5% false-positive rate on the first fifth of the
in-distribution test set, and evaluated on the other four fifths against each OOD set. Every
score is "higher = more anomalous" and OOD is the positive class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genood.experiments.stages import RunContext, file_stem, log

FIT_IMAGES = 2000
CALIBRATION_FRACTION = 0.2
TARGET_FPR = 0.05


def build_detectors(
    names: list[str], main: Any, background: Any | None, members: list[Any] | None
) -> dict[str, Any]:
    """Detector objects by score name; names that need a missing model are skipped loudly."""
    from genood.ood import (
        WAIC,
        DensityOfStates,
        InputComplexity,
        Likelihood,
        LikelihoodRatio,
        ScoreCache,
        Typicality,
        available_codecs,
    )

    cache = ScoreCache()
    detectors: dict[str, Any] = {}
    for name in names:
        if name == "likelihood":
            detectors[name] = Likelihood(main, cache=cache)
        elif name == "typicality":
            detectors[name] = Typicality(main, cache=cache)
        elif name == "ratio":
            if background is None:
                log("likelihood ratio skipped: no background model at this budget")
                continue
            detectors[name] = LikelihoodRatio(main, background, cache=cache)
        elif name == "complexity":
            codecs = available_codecs()
            codec = next((c for c in ("jpegxl", "webp", "jpeg2000") if c in codecs), "png")
            detectors[name] = InputComplexity(main, codec=codec, cache=cache)
            if codec != "png":
                detectors["complexity-png"] = InputComplexity(main, codec="png", cache=cache)
        elif name == "waic":
            if not members or len(members) < 2:
                log("WAIC skipped: it needs an ensemble of at least 2 models")
                continue
            detectors[name] = WAIC(members, cache=cache)
        elif name == "dos":
            detectors[name] = DensityOfStates(main, cache=cache)
        else:
            raise ValueError(
                f"unknown detector {name!r}; known: likelihood, typicality, ratio, complexity, "
                "waic, dos"
            )
    return detectors


def run_detection(
    ctx: RunContext, main: Any, background: Any | None, members: list[Any] | None
) -> dict[str, Any]:
    """Fit, calibrate and evaluate each detector; cached in ``detection/detection.json``."""
    from genood.ood import metrics

    out_dir = ctx.run_dir / "detection"
    path = out_dir / "detection.json"
    if path.exists():
        return json.loads(path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    fit_images = ctx.sets[ctx.in_train][:FIT_IMAGES]
    in_test = ctx.sets[ctx.in_test]
    n_val = max(int(len(in_test) * CALIBRATION_FRACTION), 1)
    val, eval_in = in_test[:n_val], in_test[n_val:]
    table: dict[str, Any] = {}
    for name, detector in build_detectors(ctx.budget.detectors, main, background, members).items():
        log(f"detector {name}")
        detector.fit(fit_images).calibrate(val, target_fpr=TARGET_FPR)
        in_scores = detector.score_samples(eval_in)
        per_ood = {}
        arrays = {"in": in_scores}
        for label in ctx.ood:
            ood_scores = detector.score_samples(ctx.sets[label])
            arrays[file_stem(label)] = ood_scores
            per_ood[label] = metrics.evaluate(in_scores, ood_scores, threshold=detector.threshold_)
        headline = per_ood[ctx.headline_ood]
        table[name] = {
            **{k: headline[k] for k in ("auroc", "aupr_in", "aupr_out", "fpr95")},
            "threshold": headline["threshold"],
            "detection_accuracy": headline["detection_accuracy"],
            "per_ood": per_ood,
        }
        np.savez(out_dir / f"{name}.npz", **arrays)
    table["_protocol"] = {
        "positive_class": "ood",
        "fit": f"{ctx.in_train} (first {len(fit_images)})",
        "calibration": f"first {n_val} of {ctx.in_test} at target FPR {TARGET_FPR}",
        "evaluation": f"remaining {len(eval_in)} of {ctx.in_test} vs each OOD set",
    }
    _write_json(path, table)
    return table


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)
