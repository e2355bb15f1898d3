"""``genood detect``: OOD detection scores of a trained run on an in-distribution / OOD pair."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from genood.cli.score import add_hparam_option, parse_hparams

ENSEMBLE_HINT = (
    "train extra members with `genood train --config RUN/config.toml --set train.seed=K "
    "--out RUN/ensemble/seed-K` for K = 1, 2, ... (the run itself is the first member), or "
    "pass --ensemble RUN_A,RUN_B"
)


def register(subparsers: Any) -> None:
    """Add the ``detect`` command."""
    parser = subparsers.add_parser(
        "detect",
        help="evaluate OOD detectors of a trained run on an in-distribution / OOD pair",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Fit, calibrate and evaluate OOD scores of a trained likelihood model.

Scores (higher = more anomalous):
  likelihood   bits/dim (Bishop 1994)
  typicality   |bits/dim - mean held-out bits/dim| (Nalisnick et al. 2019b)
  ratio        bits/dim minus the background model's (Ren et al. 2019); needs RUN/background
               from `genood train-background --run RUN`, or --background
  complexity   bits/dim minus a lossless codec's bits/dim (Serra et al. 2020); --codec, or
               complexity:CODEC with CODEC in png, jpegxl, webp, jpeg2000
  waic         ensemble mean minus variance of the log-likelihood (Choi et al. 2018); the run
               plus the runs in RUN/ensemble/*/ or --ensemble
  dos          -log density of the model's statistics (a flow's log p(z) level by level and
               its log-det) and the codec's bits/dim, a joint kernel density estimate
               (Morningstar et al. 2021); dos:CODEC, dos:none (no codec), dos:png:terms (the
               terms log p(z), log-det without the per-level split)
  llr          ELBO minus the L^{>k} bound of a hierarchical VAE run (model hvae; Havtorn et
               al. 2021); llr:K samples the K lowest latents from the conditional prior
               (default 1), llr:K:mode takes its mean (as the authors' code does)
  A+B          flag inputs extreme on any of A, B (max of robust z-scores), e.g.
               dos+typicality: the best single-sample detector measured on FashionMNIST vs
               MNIST and the probe sets (README, Results)

Several OOD sets: --out mnist-10k --out probe:noise,probe:constant,probe:letters,...
scores every set with the detectors fitted and calibrated once, on --in only, and adds an
AUROC / caught-at-threshold table over the sets (probe:KIND sets are generated: noise,
constant, letters, uci-digits, inverted:SPEC; see genood.data.probes).

Images: --in is split by a seeded permutation; --holdout of it (half to fit, half to calibrate
the threshold at --target-fpr) never enters the metrics; or give --calibration SPEC instead.
Metrics: AUROC, AUPR-in, AUPR-out, FPR@95 with OOD as the positive class, and FPR, TPR and
detection accuracy at the calibrated threshold. Written to --save: detection.json,
scores.npz (per-sample scores) and detectors/<score>/ (the calibrated detectors).

Guard demo: --guard CLASSIFIER_DIR (from `genood train-classifier`) reports, per score, the
rejection rate on --in, the classifier's accuracy on the accepted --in images and the
rejection rate on --out. The classifier sees the images as loaded, the detector the run's
preprocessing of them.""",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of a trained model")
    parser.add_argument(
        "--score",
        default="likelihood,typicality,ratio,complexity",
        help="comma-separated scores (default likelihood,typicality,ratio,complexity)",
    )
    parser.add_argument("--in", dest="in_spec", required=True, help="in-distribution set spec")
    parser.add_argument(
        "--out",
        dest="out_specs",
        action="append",
        required=True,
        help="OOD set spec; repeat it or separate with commas to test several (the first is "
        "the main pair; the others, e.g. probe:noise, probe:letters, are scored by the same "
        "fitted and calibrated detectors)",
    )
    parser.add_argument(
        "--calibration", help="held-out in-distribution spec to fit and calibrate on"
    )
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        help="share of --in held out to fit and calibrate when --calibration is absent (0.3)",
    )
    parser.add_argument("--target-fpr", type=float, default=0.05, help="threshold's FPR (0.05)")
    parser.add_argument("--codec", default="png", help="complexity's codec (png)")
    parser.add_argument("--background", type=Path, help="background run (default RUN/background)")
    parser.add_argument("--ensemble", help="comma-separated extra member runs for waic")
    parser.add_argument("--bootstrap", type=int, default=0, help="AUROC bootstrap resamples")
    parser.add_argument("--limit", type=int, default=0, help="use at most N images of each set")
    parser.add_argument("--save", type=Path, help="output folder (default RUN/detect/IN-vs-OUT)")
    parser.add_argument("--guard", type=Path, help="classifier folder for the guard demo")
    parser.add_argument("--seed", type=int, default=0, help="hold-out split and bootstrap seed")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_hparam_option(parser)
    parser.add_argument("--workers", type=int, default=1, help="threads for the codec")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", type=Path, help="data folder (else GENOOD_DATA, the cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``genood detect``."""
    import numpy as np

    from genood.data import load
    from genood.ood import ScoreCache
    from genood.ood.evaluation import (
        build_detector,
        evaluate_detectors,
        evaluate_fitted,
        format_robustness,
        format_table,
        holdout_split,
        parse_scores,
    )
    from genood.ood.metrics import CONVENTION, POSITIVE_CLASS
    from genood.train import load_run
    from genood.train.precision import resolve_device

    scores = parse_scores(args.score)
    if args.bootstrap < 0 or args.limit < 0:
        raise ValueError("--bootstrap and --limit must be >= 0")
    device = resolve_device(args.device)
    progress = not args.no_progress
    loaded = load_run(args.run, device=device, hparams=parse_hparams(args.hparams))
    model = loaded.model
    background = _background(args, scores, device)
    ensemble = _ensemble(args, scores, model, device)

    limit = args.limit or None
    out_specs = [spec.strip() for value in args.out_specs for spec in value.split(",")]
    if not all(out_specs):
        raise ValueError(f"--out has an empty data set spec: {args.out_specs}")
    in_set = load(args.in_spec, data_dir=args.data_dir, progress=progress)
    out_sets = [
        load(spec, data_dir=args.data_dir, limit=limit, progress=progress) for spec in out_specs
    ]
    out_set = out_sets[0]
    prepare = loaded.preprocessing.apply
    in_images = prepare(in_set.images)
    out_images = prepare(out_set.images)
    if args.calibration:
        held = load(args.calibration, data_dir=args.data_dir, limit=limit, progress=progress)
        held_images = prepare(held.images)
        order = np.random.default_rng(args.seed).permutation(len(held_images))
        half = len(held_images) // 2
        fit_images = held_images[np.sort(order[:half])]
        calibration_images = held_images[np.sort(order[half:])]
        evaluation = np.arange(len(in_images))[:limit]
    else:
        split = holdout_split(len(in_images), args.holdout, args.seed)
        fit_images, calibration_images = in_images[split.fit], in_images[split.calibration]
        evaluation = split.evaluation[:limit]
    cache = ScoreCache()
    detectors = {
        name: build_detector(
            name,
            model,
            background=background,
            ensemble=ensemble,
            codec=args.codec,
            cache=cache,
            batch_size=args.batch_size,
            progress=progress,
            workers=args.workers,
        )
        for name in scores
    }
    results = evaluate_detectors(
        detectors,
        fit_images,
        calibration_images,
        in_images[evaluation],
        out_images,
        target_fpr=args.target_fpr,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    others = {
        other.spec: (
            len(other.images),
            *evaluate_fitted(
                results.detectors,
                results.in_scores,
                prepare(other.images),
                bootstrap=args.bootstrap,
                seed=args.seed,
            ),
        )
        for other in out_sets[1:]
    }

    save = args.save or Path(args.run) / "detect" / f"{_slug(in_set.spec)}-vs-{_slug(out_set.spec)}"
    save.mkdir(parents=True, exist_ok=True)
    guard = None
    if args.guard:
        guard = _guard(
            args.guard, results.detectors, loaded.preprocessing, in_set, out_sets, evaluation
        )
    document = {
        "positive_class": POSITIVE_CLASS,
        "convention": CONVENTION,
        "run": str(args.run),
        "in": in_set.spec,
        "out": out_set.spec,
        "model": model.describe(),
        "preprocessing": loaded.preprocessing.to_dict(),
        "images": {
            "fit": len(fit_images),
            "calibration": len(calibration_images),
            "in": len(evaluation),
            "out": len(out_images),
            "held_out_from": args.calibration
            or f"{in_set.spec} ({args.holdout:.0%}, seed {args.seed})",
        },
        "target_fpr": args.target_fpr,
        "scores": results.metrics,
    }
    if others:
        document["robustness"] = {
            spec: {"n": count, "scores": metrics} for spec, (count, metrics, _) in others.items()
        }
    if guard is not None:
        document["guard"] = guard
    (save / "detection.json").write_text(json.dumps(document, indent=2, default=_json) + "\n")
    arrays = {"in_index": evaluation}
    for name in scores:
        key = name.replace(":", "-")
        arrays[f"{key}_in"] = results.in_scores[name]
        arrays[f"{key}_out"] = results.out_scores[name]
        for spec, (_, _, out_scores) in others.items():
            arrays[f"{key}_out_{_slug(spec)}"] = out_scores[name]
    np.savez(save / "scores.npz", **arrays)
    for name, detector in results.detectors.items():
        detector.save(save / "detectors" / name.replace(":", "-"))

    title = f"{in_set.spec} (in, {len(evaluation)}) vs {out_set.spec} (OOD, {len(out_images)})"
    print(format_table(results.metrics, title))
    if others:
        table = {out_set.spec: results.metrics, **{k: m for k, (_, m, _) in others.items()}}
        print(format_robustness(table, f"{in_set.spec} (in) against every OOD set"))
    if guard is not None:
        print(_format_guard(guard))
    print(f"wrote {save / 'detection.json'}, {save / 'scores.npz'}, {save / 'detectors'}")
    return 0


def _background(args: argparse.Namespace, scores: list[str], device: Any) -> Any:
    if "ratio" not in scores:
        return None
    from genood.train import load_run

    folder = args.background or Path(args.run) / "background"
    try:
        return load_run(folder, device=device).model
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"the ratio score needs Ren et al.'s background model in {folder}: train it with "
            f"`genood train-background --run {args.run}` (or pass --background RUN)"
        ) from error


def _ensemble(args: argparse.Namespace, scores: list[str], model: Any, device: Any) -> Any:
    if "waic" not in scores:
        return None
    from genood.train import load_run

    if args.ensemble:
        folders = [Path(p) for p in args.ensemble.split(",") if p.strip()]
    else:
        root = Path(args.run) / "ensemble"
        folders = sorted(p for p in root.glob("*") if (p / "checkpoints").is_dir())
    if not folders:
        raise FileNotFoundError(f"the waic score needs an ensemble: {ENSEMBLE_HINT}")
    members = [model]
    for folder in folders:
        try:
            members.append(load_run(folder, device=device).model)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"ensemble member {folder}: {error}") from error
    return members


def _guard(
    classifier_dir: Path,
    detectors: dict[str, Any],
    preprocessing: Any,
    in_set: Any,
    out_sets: list[Any],
    evaluation: Any,
) -> dict[str, Any]:
    from genood.ood import Classifier, GuardedClassifier

    classifier = Classifier.load(classifier_dir)
    if (in_set.labels[evaluation] < 0).any():
        raise ValueError(f"--guard needs labels for --in; {in_set.spec} has unlabelled images")
    reports = {}
    for name, detector in detectors.items():
        guarded = GuardedClassifier(classifier, detector, preprocessing.apply)
        reports[name] = guarded.report(
            in_set.images[evaluation], in_set.labels[evaluation], out_sets[0].images
        )
        if len(out_sets) > 1:
            reports[name]["ood_rejection_rates"] = {
                other.spec: float(guarded.predict(other.images).rejected.mean())
                for other in out_sets
            }
    return {"classifier": str(classifier_dir), "reports": reports}


def _format_guard(guard: dict[str, Any]) -> str:
    lines = [f"guarded classifier {guard['classifier']}:"]
    lines.append(
        f"{'score':<20}{'in rejected':>12}{'acc. accepted':>15}{'acc. unguarded':>16}"
        f"{'OOD rejected':>14}"
    )
    for name, r in guard["reports"].items():
        accepted = "-" if r["accuracy_accepted"] is None else f"{r['accuracy_accepted']:.4f}"
        lines.append(
            f"{name:<20}{r['in_rejection_rate']:>12.4f}{accepted:>15}"
            f"{r['accuracy_unguarded']:>16.4f}{r['ood_rejection_rate']:>14.4f}"
        )
    for name, r in guard["reports"].items():
        for spec, rate in r.get("ood_rejection_rates", {}).items():
            lines.append(f"  {name}: rejects {rate:.1%} of {spec}")
    return "\n".join(lines)


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")


def _json(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
