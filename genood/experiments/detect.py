"""``genood detect``: the detection workflow on a trained run, from the command line's options.

This module finds what a run folder holds (a plain training run, or a ``genood reproduce``
folder with ``models/main``, ``models/background`` and ``models/member-K``), loads the models
and data sets, and hands them to :mod:`genood.ood.workflow`. Statistics are stored in the run's
``statistics/`` folder, so a second ``detect`` on the same run and sets makes no model pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# After the recommended detector (genood.ood.registry.RECOMMENDED): the paper's score and its
# first remedies.
DEFAULT_SCORES = ("likelihood", "typicality", "ratio", "complexity")


def default_scores(guard: bool = False) -> list[str]:
    """``genood detect``'s scores without ``--score``: the recommended detector first; with a
    classifier (``--guard``), the recommended gate (``RECOMMENDED_GATE``, which reads it) before
    it."""
    from genood.ood.registry import RECOMMENDED, RECOMMENDED_GATE

    first = (RECOMMENDED_GATE, RECOMMENDED) if guard else (RECOMMENDED,)
    return list(dict.fromkeys((*first, *DEFAULT_SCORES)))


@dataclass
class DetectJob:
    """The options of one ``genood detect`` (see its ``--help`` for each)."""

    run: Path
    in_spec: str
    out_specs: list[str]
    scores: str | None = None
    calibration: str | None = None
    holdout: float = 0.3
    target_fpr: float = 0.05
    codec: str = "png"
    background: Path | None = None
    ensemble: str | None = None
    bootstrap: int = 0
    limit: int | None = None
    save: Path | None = None
    guard: Path | None = None
    seed: int = 0
    batch_size: int = 256
    hparams: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    device: str = "auto"
    data_dir: Path | None = None
    progress: bool = True
    pad_to: int | None = None
    channels: int | None = None
    resize: int | None = None


def split_specs(values: list[str]) -> list[str]:
    """``--out`` values -> set specs: commas separate specs, except inside a path.

    A piece that does not start a spec (a known set name, ``npz:``, ``imagefolder:`` or
    ``probe:``) continues the previous one, so ``npz:/data/a,b.npz`` stays one spec.
    """
    from genood.data.registry import names

    starts = {*names(), "npz", "imagefolder", "probe"}
    specs: list[str] = []
    for value in values:
        for piece in value.split(","):
            if not piece.strip():
                raise ValueError(f"--out has an empty data set spec: {values}")
            if specs and piece.strip().split(":")[0] not in starts:
                specs[-1] += "," + piece
            else:
                specs.append(piece.strip())
    return specs


@dataclass
class RunLayout:
    """Where a run folder keeps its models and statistics."""

    main: Path
    background: Path
    members: list[Path]
    statistics: Path
    reproduction: bool


def layout(run: Path) -> RunLayout:
    """A ``genood reproduce`` folder (``models/main``...) or a plain training run."""
    run = Path(run)
    models = run / "models"
    if (models / "main" / "checkpoints").is_dir():
        members = sorted(p for p in models.glob("member-*") if (p / "checkpoints").is_dir())
        return RunLayout(models / "main", models / "background", members, run / "statistics", True)
    members = sorted(p for p in (run / "ensemble").glob("*") if (p / "checkpoints").is_dir())
    return RunLayout(run, run / "background", members, run / "statistics", False)


def choose_scores(job: DetectJob, where: RunLayout, say: Any = print) -> list[str]:
    """The scores to run: ``--score``, else the defaults minus ``ratio`` without a background."""
    from genood.ood import parse

    if job.scores is not None:
        return parse(job.scores, job.codec)
    background = job.background or where.background
    chosen = default_scores(guard=job.guard is not None)
    if not (Path(background) / "checkpoints").is_dir():
        chosen.remove("ratio")
        say(
            f"ratio skipped: no background model in {background} (train it with "
            f"`genood train-background --run {job.run}`, or pass --background RUN)"
        )
    return parse(chosen, job.codec)


def load_models(job: DetectJob, where: RunLayout, scores: list[str], say: Any = print) -> dict:
    """The main model (as a LoadedRun) and, where the scores need them, background and ensemble."""
    from genood.ood.registry import needs
    from genood.train import load_run
    from genood.train.precision import resolve_device

    device = resolve_device(job.device)
    loaded = load_run(where.main, device=device, hparams=job.hparams)
    needed = set().union(*(needs(s) for s in scores))
    background = None
    if "background" in needed:
        folder = job.background or where.background
        try:
            back = load_run(folder, device=device, hparams=job.hparams)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"the ratio score needs Ren et al.'s background model in {folder}: train it with "
                f"`genood train-background --run {job.run}` (or pass --background RUN)"
            ) from error
        if back.step < loaded.step:
            say(
                f"warning: the background model trained for {back.step} steps, the model for "
                f"{loaded.step}; Ren et al. train both to comparable convergence, and a shorter-"
                "trained background measures training length as much as background statistics"
            )
        background = back.model
    ensemble = _ensemble(job, where, loaded, device, say) if "ensemble" in needed else None
    classifier = None
    if "classifier" in needed or job.guard:
        from genood.ood import Classifier
        from genood.ood.registry import NEED_HINTS

        if not job.guard:
            wanting = [s for s in scores if "classifier" in needs(s)]
            raise ValueError(f"the score(s) {', '.join(wanting)} need {NEED_HINTS['classifier']}")
        classifier = Classifier.load(job.guard, device=device)
    return {
        "loaded": loaded,
        "background": background,
        "ensemble": ensemble,
        "classifier": classifier,
    }


def _ensemble(job: DetectJob, where: RunLayout, loaded: Any, device: Any, say: Any) -> list:
    from genood.ood.registry import NEED_HINTS
    from genood.train import load_run

    if job.ensemble:
        folders = [Path(p) for p in job.ensemble.split(",") if p.strip()]
    else:
        folders = where.members
    if not folders:
        raise FileNotFoundError(f"the waic score needs {NEED_HINTS['ensemble']}")
    members = []
    for folder in folders:
        try:
            members.append(load_run(folder, device=device, hparams=job.hparams))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"ensemble member {folder}: {error}") from error
    if all(m.step == loaded.step for m in members):
        return [loaded.model] + [m.model for m in members]
    say(
        f"waic over the {len(members)} member runs only: they trained for "
        f"{sorted({m.step for m in members})} steps, the main model for {loaded.step} "
        "(WAIC's variance must compare equally trained models)"
    )
    return [m.model for m in members]


def preprocessing(job: DetectJob, recorded: Any) -> Any:
    """The run's recorded preprocessing with ``--pad-to/--channels/--resize`` applied."""
    changes = {"pad_to": job.pad_to, "channels": job.channels, "resize": job.resize}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return recorded
    return type(recorded).from_dict({**recorded.to_dict(), **changes})


def run_detect(job: DetectJob, say: Any = print) -> Path:
    """Fit, calibrate and evaluate; write ``detection.json``, ``scores.npz``, ``detectors/``."""
    from genood.data import load
    from genood.ood import Statistics, build, workflow
    from genood.ood.statistics import subset
    from genood.ood.tables import format_guard, format_robustness, format_table
    from genood.train.sets import fit_images

    if job.bootstrap < 0:
        raise ValueError(f"--bootstrap must be >= 0, got {job.bootstrap}")
    if job.limit is not None and job.limit < 1:
        raise ValueError(
            f"--limit must be at least 1, got {job.limit}; leave --limit out to use every image"
        )
    where = layout(job.run)
    scores = choose_scores(job, where, say)
    models = load_models(job, where, scores, say)
    loaded = models["loaded"]
    model = loaded.model
    prep = preprocessing(job, loaded.preprocessing)
    store = Statistics(where.statistics, job.batch_size, workers=job.workers, progress=job.progress)
    detectors = {
        s: build(
            s,
            model,
            background=models["background"],
            ensemble=models["ensemble"],
            store=store,
            codec=job.codec,
            classifier=models["classifier"],
            preprocessing=prep,
        )
        for s in scores
    }

    def images_of(data: Any) -> np.ndarray:
        return fit_images(
            np.asarray(data.images), prep, model.image_shape, f"data set {data.spec!r}"
        )

    in_set = load(job.in_spec, data_dir=job.data_dir, progress=job.progress)
    out_sets = [
        load(s, data_dir=job.data_dir, limit=job.limit, progress=job.progress)
        for s in job.out_specs
    ]
    sets = {in_set.spec: images_of(in_set), **{o.spec: images_of(o) for o in out_sets}}
    # as loaded, for what reads them so (a classifier's logits)
    loaded_sets = {in_set.spec: np.asarray(in_set.images)}
    loaded_sets.update({o.spec: np.asarray(o.images) for o in out_sets})
    for same in (o.spec for o in out_sets if o.spec == in_set.spec):
        say(f"warning: --out {same} is the --in set itself: its AUROC measures nothing (about 0.5)")
    held = None
    if job.calibration:
        held = load(job.calibration, data_dir=job.data_dir, limit=job.limit, progress=job.progress)
        sets[f"calibration:{held.spec}"] = images_of(held)
        loaded_sets[f"calibration:{held.spec}"] = np.asarray(held.images)
    count_in = len(in_set.images)
    if held is None:
        split = workflow.holdout_split(count_in, job.holdout, job.seed)
        evaluation = split.evaluation[: job.limit]
        used = np.sort(np.concatenate([split.fit, split.calibration, evaluation]))
    else:
        evaluation = np.arange(count_in)[: job.limit]
        used = evaluation
    whole = len(used) == count_in  # else only the images a limited run uses go through models
    if not whole:
        sets[in_set.spec] = sets[in_set.spec][used]
        loaded_sets[in_set.spec] = loaded_sets[in_set.spec][used]
    passes_before = store.passes
    stats = workflow.gather_sets(detectors, sets, store, loaded_sets)

    def part(index: np.ndarray) -> dict[str, np.ndarray]:
        return subset(stats[in_set.spec], index if whole else np.searchsorted(used, index))

    if held is None:
        fit, calibration = part(split.fit), part(split.calibration)
    else:
        held_stats = stats[f"calibration:{held.spec}"]
        fit_idx, cal_idx = workflow.halves(len(held.images), job.seed)
        fit, calibration = subset(held_stats, fit_idx), subset(held_stats, cal_idx)
    results = workflow.evaluate(
        detectors,
        part(evaluation),
        {o.spec: stats[o.spec] for o in out_sets},
        bootstrap=job.bootstrap,
        seed=job.seed,
        fit=fit,
        calibration=calibration,
        target_fpr=job.target_fpr,
    )
    guard = None
    if job.guard:
        guard = guard_figures(
            job.guard,
            models["classifier"],
            results.detectors,
            in_set.spec,
            (np.asarray(in_set.images)[evaluation], np.asarray(in_set.labels)[evaluation]),
            part(evaluation),
            {o.spec: (o.images, stats[o.spec]) for o in out_sets},
        )

    out = out_sets[0]
    save = (
        job.save
        or job.run / "detect" / f"{workflow.slug(in_set.spec)}-vs-{workflow.slug(out.spec)}"
    )
    document = _document(
        job, where, loaded, prep, in_set, out_sets, fit, calibration, evaluation, results, guard
    )
    workflow.write(save, document, results, {"in_index": evaluation})

    title = f"{in_set.spec} (in, {len(evaluation)}) vs {out.spec} (OOD, {len(out.images)})"
    say(format_table(results.metrics, title))
    if len(out_sets) > 1:
        table = {name: results.per_set[name] for name in results.per_set}
        say(format_robustness(table, f"{in_set.spec} (in) against every OOD set"))
    if guard is not None:
        say(format_guard(guard))
    for warning in results.warnings:
        say(f"warning: {warning}")
    computed = store.passes - passes_before
    say(f"statistics: {computed} computed, the rest read from {where.statistics}")
    say(f"wrote {save / 'detection.json'}, {save / 'scores.npz'}, {save / 'detectors'}")
    return save


def guard_figures(
    folder: Path,
    classifier: Any,
    detectors: dict,
    in_name: str,
    in_images_labels: tuple[np.ndarray, np.ndarray],
    in_stats: dict,
    ood: dict[str, tuple[np.ndarray, dict]],
) -> dict[str, Any]:
    """Each detector as a gate in front of ``classifier`` (the classifier in ``folder``): the
    in-distribution rejection rate and accuracy (accepted vs unguarded) on the labelled
    evaluation images of ``in_name``, and the rejection rate of each OOD set in ``ood``
    (``{name: (images as loaded, statistics)}``, the first one the headline). What ``genood
    detect --guard`` and ``genood reproduce --guard`` print and store (``"guard"``)."""
    from genood.ood import workflow

    images, labels = in_images_labels
    if (np.asarray(labels) < 0).any():
        raise ValueError(
            f"--guard needs labels for the in-distribution set; {in_name} has unlabelled images"
        )
    reports = workflow.guard_reports(classifier, detectors, images, labels, in_stats, ood)
    return {"classifier": str(folder), "reports": reports}


def _document(
    job: DetectJob,
    where: RunLayout,
    loaded: Any,
    prep: Any,
    in_set: Any,
    out_sets: list,
    fit: dict,
    calibration: dict,
    evaluation: np.ndarray,
    results: Any,
    guard: dict | None,
) -> dict[str, Any]:
    """``detection.json``: the same keys as before the workflow was shared (version 1)."""
    from genood.data.probe_groups import in_goal, set_group
    from genood.ood.base import jsonable
    from genood.ood.metrics import CONVENTION, POSITIVE_CLASS
    from genood.ood.registry import needs
    from genood.ood.statistics import count

    out = out_sets[0]
    document: dict[str, Any] = {
        "positive_class": POSITIVE_CLASS,
        "convention": CONVENTION,
        "run": str(job.run),
        "in": in_set.spec,
        "out": out.spec,
        "model": jsonable(loaded.model.describe()),
        "preprocessing": prep.to_dict(),
        "images": {
            "fit": count(fit),
            "calibration": count(calibration),
            "in": len(evaluation),
            "out": len(out.images),
            "held_out_from": job.calibration
            or f"{in_set.spec} ({job.holdout:.0%}, seed {job.seed})",
        },
        "target_fpr": job.target_fpr,
        "scores": results.metrics,
        "statistics": str(where.statistics),
    }
    if len(out_sets) > 1:
        document["robustness"] = {
            o.spec: {
                "n": len(o.images),
                "group": set_group(o.spec),
                "in_goal": in_goal(o.spec),
                "scores": results.per_set[o.spec],
            }
            for o in out_sets[1:]
        }
    if any("background" in needs(name) for name in results.metrics):
        # Which second model the ratio divided by: Ren et al.'s mutation-trained background
        # (RUN/background) or another run, e.g. a general-domain model (Schirrmeister et al.).
        document["background"] = str(job.background or where.background)
    if results.warnings:
        document["warnings"] = results.warnings
    if guard is not None:
        document["guard"] = guard
    return document
