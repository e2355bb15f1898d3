"""The detection table of a reproduction: every detector a budget names, one protocol.

Protocol (stated in the report): each detector is fitted on in-distribution *training* images
(at most ``FIT_IMAGES``), calibrated to a 5% false-positive rate on the first fifth of the
in-distribution test set, and evaluated on the other four fifths against each OOD set. Every
score is "higher = more anomalous" and OOD is the positive class.

The same fitted and calibrated detectors then meet the probe sets of the declared protocol
(:func:`genood.data.probe_groups.protocol`: far-OOD noise and constant images, near-OOD letters,
font digits and UCI digits, and the in-distribution test set flipped, rotated and inverted),
``PROBE_IMAGES`` each, at the in-distribution images' shape. Each probe's group, and whether it
is a validation or a held-out set of the protocol, go into ``detection.json``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from genood.experiments.stages import RunContext, file_stem, log
from genood.io import json_default, save_npz_atomic, write_text_atomic

FIT_IMAGES = 2000
CALIBRATION_FRACTION = 0.2
TARGET_FPR = 0.05
PROBE_IMAGES = 1000


def build_detectors(
    names: list[str], main: Any, background: Any | None, members: list[Any] | None, store: Any
) -> dict[str, Any]:
    """Detector objects by score spec (``complexity:jpegxl``, ``complexity+typicality``...); a
    score whose model or codec is missing is skipped with a log line, so that every budget runs
    wherever genood installs."""
    from genood.ood import available_codecs, build
    from genood.ood.registry import options

    codecs = set(available_codecs())
    detectors: dict[str, Any] = {}
    for name in names:
        chosen = [options(part).get("codec") for part in name.split("+")]
        missing = [c for c in chosen if c is not None and c not in codecs]
        if missing:
            log(
                f"{name} skipped: codec {missing[0]} is not installed (pip install 'genood[codecs]')"
            )
            continue
        try:
            detectors[name] = build(
                name, main, background=background, ensemble=members, store=store
            )
        except (ValueError, TypeError) as error:
            if "needs" not in str(error):
                raise
            log(f"{name} skipped: {error}")
    return detectors


def run_detection(
    ctx: RunContext, main: Any, background: Any | None, members: list[Any] | None
) -> dict[str, Any]:
    """Fit, calibrate and evaluate each detector; cached in ``detection/detection.json``."""
    from genood.data.probe_groups import in_goal, set_group
    from genood.ood import workflow
    from genood.ood.statistics import subset

    out_dir = ctx.run_dir / "detection"
    path = out_dir / "detection.json"
    if path.exists():
        return json.loads(path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    detectors = build_detectors(ctx.budget.detectors, main, background, members, ctx.store)
    probes, roles = probe_sets(ctx)
    sets = {label: ctx.sets[label] for label in (ctx.in_train, ctx.in_test, *ctx.ood)}
    stats = workflow.gather_sets(detectors, {**sets, **probes}, ctx.store)
    n_fit = min(FIT_IMAGES, len(ctx.sets[ctx.in_train]))
    n_test = len(ctx.sets[ctx.in_test])
    n_val = max(int(n_test * CALIBRATION_FRACTION), 1)
    for name in detectors:
        log(f"detector {name}")
    results = workflow.evaluate(
        detectors,
        subset(stats[ctx.in_test], slice(n_val, None)),
        {label: stats[label] for label in (*ctx.ood, *probes)},
        fit=subset(stats[ctx.in_train], slice(0, n_fit)),
        calibration=subset(stats[ctx.in_test], slice(0, n_val)),
        target_fpr=TARGET_FPR,
    )
    table: dict[str, Any] = {}
    for name in detectors:
        per_ood = {label: results.per_set[label][name] for label in ctx.ood}
        per_probe = {
            label: {
                **{k: results.per_set[label][name][k] for k in ("auroc", "fpr95", "tpr")},
                "group": set_group(label),
                "role": roles[label],
                "in_goal": in_goal(label),
            }
            for label in probes
        }
        headline = per_ood[ctx.headline_ood]
        table[name] = {
            **{k: headline[k] for k in ("auroc", "aupr_in", "aupr_out", "fpr95")},
            "threshold": headline["threshold"],
            "detection_accuracy": headline["detection_accuracy"],
            "per_ood": per_ood,
            "probes": per_probe,
        }
        arrays = {"in": results.in_scores[name]}
        for label, scores in results.out_scores.items():
            arrays[file_stem(label)] = scores[name]
        save_npz_atomic(out_dir / f"{name}.npz", **arrays)
    table["_protocol"] = {
        "positive_class": "ood",
        "fit": f"{ctx.in_train} (first {n_fit})",
        "calibration": f"first {n_val} of {ctx.in_test} at target FPR {TARGET_FPR}",
        "evaluation": f"remaining {n_test - n_val} of {ctx.in_test} vs each OOD set",
        "probes": f"{', '.join(probes)}: {PROBE_IMAGES} images each, never tuned on "
        "(validation and held-out roles of the declared protocol, docs/detection.md)",
    }
    write_text_atomic(path, json.dumps(table, indent=2, default=json_default))
    return table


def probe_specs(in_spec: str) -> dict[str, str]:
    """The protocol's probe specs for the in-distribution test set ``in_spec``, by role."""
    from genood.data.probe_groups import protocol

    roles = protocol(in_spec)
    return {
        **{spec: "validation" for spec in roles["validation"]},
        **{spec: "held-out" for spec in roles["held_out"]},
        **{spec: "outside the goal" for spec in roles["reported_only"]},
    }


def probe_sets(ctx: RunContext) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The protocol's probe sets at the in-distribution images' raw shape, preprocessed like
    them, and each set's role (``validation``, ``held-out``, ``outside the goal``) by label."""
    from genood.data.probe_groups import TRANSFORMED, probe_group
    from genood.data.probes import load_probe

    assert ctx.data_spec is not None
    in_spec = ctx.data_spec.in_test
    sets: dict[str, np.ndarray] = {}
    roles: dict[str, str] = {}
    shape = ""
    for spec, role in probe_specs(in_spec).items():
        body = spec.removeprefix("probe:")
        if probe_group(spec) == TRANSFORMED:
            probe = load_probe(body, ctx.data_dir, limit=PROBE_IMAGES, progress=False)
            shape = "x".join(str(v) for v in probe.images.shape[1:])
            label = f"probe:{body.split(':', 1)[0]} ({ctx.in_test})"
        else:
            if not shape:  # the raw in-distribution shape, from the test set itself
                shape = _raw_shape(ctx)
            probe = load_probe(f"{body}:{shape}", limit=PROBE_IMAGES)
            label = probe.spec
        sets[label] = ctx.preprocessing.apply(probe.images)
        roles[label] = role
    return sets, roles


def _raw_shape(ctx: RunContext) -> str:
    from genood.data.loading import load

    assert ctx.data_spec is not None
    first = load(ctx.data_spec.in_test, data_dir=ctx.data_dir, limit=1, progress=False)
    return "x".join(str(v) for v in first.images.shape[1:])
