"""The detection table of a reproduction: every detector a budget names, one protocol.

Protocol (stated in the report): each detector is fitted on in-distribution *training* images
(at most ``FIT_IMAGES``), calibrated to a 5% false-positive rate on the first fifth of the
in-distribution test set, and evaluated on the other four fifths against each OOD set. Every
score is "higher = more anomalous" and OOD is the positive class; every AUROC comes with a 95%
percentile-bootstrap interval (``BOOTSTRAP`` stratified resamples, seed 0).

The same fitted and calibrated detectors then meet the probe sets of the declared protocol
(:func:`genood.data.probe_groups.protocol`: far-OOD noise and constant images, near-OOD letters,
font digits and UCI digits, and the in-distribution test set flipped, rotated and inverted),
``PROBE_IMAGES`` each, at the in-distribution images' shape. Each probe's group, and whether it
is a validation or a held-out set of the protocol, go into ``detection.json``.

With a classifier (``genood reproduce ... --guard CLF_DIR``) the table adds the recommended gate
(``genood.ood.RECOMMENDED_GATE``) and the classifier's baselines (:data:`GUARD_BASELINES`). The
classifier reads every set as loaded (28x28 for FashionMNIST), the model its preprocessing of
the same images (a Glow's 32x32); the combination routes each component its view
(:func:`genood.ood.statistics.gather_views`). Each classifier-reading score is then put in
front of the classifier as a gate (:func:`genood.experiments.detect.guard_figures`: the
in-distribution rejection rate, the accuracy on the accepted evaluation images against the
unguarded one, and the share of each OOD and probe set rejected), stored under ``"_guard"``
with the classifier's folder and weight fingerprint. A cached table is reused only when it was
made with the same classifier (or none), so adding, changing or dropping ``--guard`` recomputes
it from the stored statistics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genood.experiments.stages import RunContext, file_stem, log
from genood.io import json_default, save_npz_atomic, write_text_atomic

FIT_IMAGES = 2000
CALIBRATION_FRACTION = 0.2
TARGET_FPR = 0.05
PROBE_IMAGES = 1000
BOOTSTRAP = 200  # resamples of each AUROC's 95% interval (genood detect --bootstrap)
# With a classifier: the recommended gate (genood.ood.RECOMMENDED_GATE), then these baselines.
GUARD_BASELINES = ("mahalanobis", "energy:2", "msp")


@dataclass(frozen=True)
class Guard:
    """The classifier of ``genood reproduce --guard``: the network, its folder and its weight
    fingerprint (:func:`genood.ood.fingerprint`, what a cached table is checked against)."""

    classifier: Any
    folder: Path
    fingerprint: str

    def record(self) -> dict[str, Any]:
        """What results.json records of it (``"classifier"``)."""
        return {
            "folder": str(self.folder),
            "fingerprint": self.fingerprint,
            "image_shape": list(self.classifier.image_shape),
            "num_classes": self.classifier.num_classes,
        }


def load_guard(ctx: RunContext, folder: str | Path) -> Guard:
    """The classifier in ``folder`` (from ``genood train-classifier``), checked to read the run's
    in-distribution images as loaded (after :meth:`RunContext.prepare_data` with
    ``keep_loaded``)."""
    from genood.ood import Classifier, fingerprint
    from genood.train.precision import resolve_device

    folder = Path(folder).resolve()
    classifier = Classifier.load(folder, device=resolve_device(ctx.device))
    loaded = tuple(ctx.loaded[ctx.in_test].shape[1:])
    if tuple(classifier.image_shape) != loaded:
        shape = "x".join(map(str, classifier.image_shape))
        data = ctx.experiment.data
        raise ValueError(
            f"--guard {folder}: the classifier reads {shape} images, but "
            f"{ctx.experiment.name}'s images are {'x'.join(map(str, loaded))} as loaded (the "
            "classifier reads them before the model's preprocessing); train one on them with "
            f"`genood train-classifier --data {data.in_train} --val {data.in_test} --out DIR`"
        )
    if (ctx.labels[ctx.in_test] < 0).any():
        raise ValueError(
            f"--guard measures the classifier's accuracy on {ctx.in_test}, which has unlabelled "
            "images: leave --guard out for this experiment"
        )
    return Guard(classifier, folder, fingerprint(classifier))


def build_detectors(
    names: list[str],
    main: Any,
    background: Any | None,
    members: list[Any] | None,
    store: Any,
    classifier: Any = None,
    preprocessing: Any = None,
) -> dict[str, Any]:
    """Detector objects by score spec (``complexity:jpegxl``, ``complexity+typicality``...); a
    score whose model or codec is missing is skipped with a log line, so that every budget runs
    wherever genood installs. ``classifier`` and ``preprocessing`` (the run's) are for the
    scores that read a classifier."""
    from genood.ood import available_codecs, build
    from genood.ood.registry import options

    codecs = set(available_codecs())
    detectors: dict[str, Any] = {}
    for name in names:
        chosen = [options(part).get("codec") for part in name.partition("@")[0].split("+")]
        missing = [c for c in chosen if c is not None and c not in codecs]
        if missing:
            log(
                f"{name} skipped: codec {missing[0]} is not installed (pip install 'genood[codecs]')"
            )
            continue
        try:
            detectors[name] = build(
                name,
                main,
                background=background,
                ensemble=members,
                store=store,
                classifier=classifier,
                preprocessing=preprocessing,
            )
        except (ValueError, TypeError) as error:
            if "needs" not in str(error):
                raise
            log(f"{name} skipped: {error}")
    return detectors


def run_detection(
    ctx: RunContext,
    main: Any,
    background: Any | None,
    members: list[Any] | None,
    guard: Guard | None = None,
) -> dict[str, Any]:
    """Fit, calibrate and evaluate each detector; cached in ``detection/detection.json``.

    With ``guard`` (a classifier and its folder) the table adds the recommended gate and
    :data:`GUARD_BASELINES`, and the guard figures (``"_guard"``); see the module doc.
    """
    from genood.data.probe_groups import in_goal, set_group
    from genood.experiments.detect import guard_figures
    from genood.ood import workflow
    from genood.ood.registry import RECOMMENDED_GATE, needs
    from genood.ood.statistics import subset
    from genood.ood.tables import format_guard

    out_dir = ctx.run_dir / "detection"
    path = out_dir / "detection.json"
    wanted = None if guard is None else guard.fingerprint
    if path.exists():
        cached = json.loads(path.read_text())
        reason = _stale(cached, ctx, wanted)
        if reason is None:
            return cached
        log(f"detection table recomputed: {reason}")
        for stale in out_dir.glob("*.npz"):
            stale.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(ctx.budget.detectors)
    if guard is not None:
        names = list(dict.fromkeys((*names, RECOMMENDED_GATE, *GUARD_BASELINES)))
    detectors = build_detectors(
        names,
        main,
        background,
        members,
        ctx.store,
        classifier=None if guard is None else guard.classifier,
        preprocessing=None if guard is None else ctx.preprocessing,
    )
    raw_probes, roles = probe_sets(ctx)
    probes = {label: ctx.preprocessing.apply(images) for label, images in raw_probes.items()}
    labels = (ctx.in_train, ctx.in_test, *ctx.ood)
    sets = {label: ctx.sets[label] for label in labels}
    loaded = None
    if guard is not None:
        loaded = {**{label: ctx.loaded[label] for label in labels}, **raw_probes}
    stats = workflow.gather_sets(detectors, {**sets, **probes}, ctx.store, loaded)
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
        bootstrap=BOOTSTRAP,
    )
    table: dict[str, Any] = {}
    for name in detectors:
        per_ood = {label: results.per_set[label][name] for label in ctx.ood}
        per_probe = {
            label: {
                **{
                    k: results.per_set[label][name][k]
                    for k in ("auroc", "auroc_ci", "fpr95", "tpr")
                },
                "group": set_group(label),
                "role": roles[label],
                "in_goal": in_goal(label),
            }
            for label in probes
        }
        headline = per_ood[ctx.headline_ood]
        table[name] = {
            **{k: headline[k] for k in ("auroc", "auroc_ci", "aupr_in", "aupr_out", "fpr95")},
            "threshold": headline["threshold"],
            "target_fpr": TARGET_FPR,
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
    if guard is not None:
        evaluation = slice(n_val, None)
        views = {label: ctx.loaded[label] for label in ctx.ood} | raw_probes
        table["_guard"] = {
            **guard_figures(
                guard.folder,
                guard.classifier,
                {n: d for n, d in results.detectors.items() if "classifier" in needs(n)},
                ctx.in_test,
                (ctx.loaded[ctx.in_test][evaluation], ctx.labels[ctx.in_test][evaluation]),
                subset(stats[ctx.in_test], evaluation),
                {label: (views[label], stats[label]) for label in (*ctx.ood, *probes)},
            ),
            "fingerprint": guard.fingerprint,
            "in": f"remaining {n_test - n_val} of {ctx.in_test} (labelled)",
        }
        log(format_guard(table["_guard"]))
    write_text_atomic(path, json.dumps(table, indent=2, default=json_default))
    return table


def _stale(cached: dict[str, Any], ctx: RunContext, fingerprint: str | None) -> str | None:
    """Why a cached table does not fit this run (``None`` when it does): made with another
    classifier (or none), against other OOD sets (one became reachable or unreachable), or
    without AUROC intervals (by an earlier genood)."""
    made_with = (cached.get("_guard") or {}).get("fingerprint")
    if made_with != fingerprint:
        return (
            f"it was made with classifier {made_with or 'none'}, this run has "
            f"{fingerprint or 'none'}"
        )
    rows = [row for name, row in cached.items() if not name.startswith("_")]
    sets = list(rows[0]["per_ood"]) if rows else list(ctx.ood)
    if sets != list(ctx.ood):
        return f"it was made against {', '.join(sets)}, this run has {', '.join(ctx.ood)}"
    if rows and "auroc_ci" not in rows[0]:
        return "it has no AUROC intervals (made before genood added them)"
    return None


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
    """The protocol's probe sets at the in-distribution images' raw shape, as loaded (not yet
    preprocessed: ``ctx.preprocessing.apply`` makes the models' input), and each set's role
    (``validation``, ``held-out``, ``outside the goal``) by label."""
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
        sets[label] = np.asarray(probe.images)
        roles[label] = role
    return sets, roles


def _raw_shape(ctx: RunContext) -> str:
    from genood.data.loading import load

    assert ctx.data_spec is not None
    first = load(ctx.data_spec.in_test, data_dir=ctx.data_dir, limit=1, progress=False)
    return "x".join(str(v) for v in first.images.shape[1:])
