"""The detection table of a reproduction: every detector a budget names, one protocol.

Protocol (stated in the report): each detector is fitted on in-distribution *training* images
(at most ``FIT_IMAGES``), calibrated to a 5% false-positive rate on the first fifth of the
in-distribution test set, and evaluated on the other four fifths against each OOD set. Every
score is "higher = more anomalous" and OOD is the positive class.

The same fitted and calibrated detectors then meet generated probe sets that nobody tuned them
on (:mod:`genood.data.probes`: noise, constant, letters, UCI digits and the inverted
in-distribution test set), ``PROBE_IMAGES`` each, at the in-distribution images' shape.
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
PROBES = ("noise", "constant", "letters", "uci-digits")
PROBE_IMAGES = 1000


def build_detectors(
    names: list[str], main: Any, background: Any | None, members: list[Any] | None
) -> dict[str, Any]:
    """Detector objects by score name (``genood.ood.evaluation.build_detector`` names, e.g.
    ``complexity:jpegxl`` or ``complexity+typicality``); a score whose model or codec is missing
    is skipped with a log line, so that every budget runs wherever genood installs."""
    from genood.ood import ScoreCache, available_codecs
    from genood.ood.evaluation import build_detector

    cache = ScoreCache()
    codecs = set(available_codecs())
    detectors: dict[str, Any] = {}
    for name in names:
        missing = [
            part.partition(":")[2]
            for part in name.split("+")
            if part.partition(":")[2] and part.partition(":")[2] not in codecs | {"none"}
        ]
        if missing:
            log(
                f"{name} skipped: codec {missing[0]} is not installed (pip install 'genood[codecs]')"
            )
            continue
        try:
            detectors[name] = build_detector(
                name, main, background=background, ensemble=members, cache=cache
            )
        except ValueError as error:
            if "needs" not in str(error):
                raise
            log(f"{name} skipped: {error}")
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
    probes = probe_sets(ctx)
    table: dict[str, Any] = {}
    for name, detector in build_detectors(ctx.budget.detectors, main, background, members).items():
        log(f"detector {name}")
        detector.fit(fit_images).calibrate(val, target_fpr=TARGET_FPR)
        in_scores = detector.score_samples(eval_in)
        per_ood, per_probe = {}, {}
        arrays = {"in": in_scores}
        for label, images in {**{label: ctx.sets[label] for label in ctx.ood}, **probes}.items():
            scores = detector.score_samples(images)
            arrays[file_stem(label)] = scores
            found = metrics.evaluate(in_scores, scores, threshold=detector.threshold_)
            if label in probes:
                per_probe[label] = {k: found[k] for k in ("auroc", "fpr95", "tpr")}
            else:
                per_ood[label] = found
        headline = per_ood[ctx.headline_ood]
        table[name] = {
            **{k: headline[k] for k in ("auroc", "aupr_in", "aupr_out", "fpr95")},
            "threshold": headline["threshold"],
            "detection_accuracy": headline["detection_accuracy"],
            "per_ood": per_ood,
            "probes": per_probe,
        }
        np.savez(out_dir / f"{name}.npz", **arrays)
    table["_protocol"] = {
        "positive_class": "ood",
        "fit": f"{ctx.in_train} (first {len(fit_images)})",
        "calibration": f"first {n_val} of {ctx.in_test} at target FPR {TARGET_FPR}",
        "evaluation": f"remaining {len(eval_in)} of {ctx.in_test} vs each OOD set",
        "probes": f"{', '.join(probes)}: {PROBE_IMAGES} generated images each, never tuned on",
    }
    _write_json(path, table)
    return table


def probe_sets(ctx: RunContext) -> dict[str, np.ndarray]:
    """Probe sets at the in-distribution images' raw shape, preprocessed like them."""
    from genood.data.probes import load_probe

    assert ctx.data_spec is not None
    inverted = load_probe(
        f"inverted:{ctx.data_spec.in_test}", ctx.data_dir, limit=PROBE_IMAGES, progress=False
    )
    shape = "x".join(str(v) for v in inverted.images.shape[1:])  # the raw in-distribution shape
    sets = {}
    for kind in PROBES:
        probe = load_probe(f"{kind}:{shape}", limit=PROBE_IMAGES)
        sets[probe.spec] = ctx.preprocessing.apply(probe.images)
    sets[f"probe:inverted ({ctx.in_test})"] = ctx.preprocessing.apply(inverted.images)
    return sets


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)
