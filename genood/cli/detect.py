"""``genood detect``: OOD detection scores of a trained run on an in-distribution / OOD pair."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genood.cli.options import add_hparam_option, add_limit_option, check_limit, hparam_overrides

SCORES_PLACEHOLDER = "{registered scores}"
DEFAULTS_PLACEHOLDER = "{default scores}"


class ScoreListFormatter(argparse.RawDescriptionHelpFormatter):
    """Fills in the registry's score list when help is shown (so the CLI starts fast)."""

    def add_text(self, text: str | None) -> None:
        if text and SCORES_PLACEHOLDER in text:
            import genood.ood  # noqa: F401  (registers every score)
            from genood.ood.registry import help_text

            text = text.replace(SCORES_PLACEHOLDER, help_text())
        super().add_text(text)

    def _expand_help(self, action: argparse.Action) -> str:
        text = super()._expand_help(action)
        if DEFAULTS_PLACEHOLDER in text:
            from genood.experiments.detect import default_scores

            text = text.replace(DEFAULTS_PLACEHOLDER, ",".join(default_scores()))
        return text


def register(subparsers: Any) -> None:
    """Add the ``detect`` command."""
    parser = subparsers.add_parser(
        "detect",
        help="evaluate OOD detectors of a trained run on an in-distribution / OOD pair",
        formatter_class=ScoreListFormatter,
        description="""\
Fit, calibrate and evaluate OOD scores of a trained likelihood model.

Scores (higher = more anomalous; SPEC options after colons):
{registered scores}

--run is a training run, or a `genood reproduce` folder (its models/main, models/background
and models/member-K are used). Model passes are stored in RUN/statistics: a second detect on
the same run and sets reads them back instead of running the model again.

Several OOD sets: --out mnist-10k --out probe:noise,probe:constant,probe:letters,...
scores every set with the detectors fitted and calibrated once, on --in only, and adds an
AUROC / caught-at-threshold table over the sets, grouped (probe:KIND sets are generated:
far-OOD noise, constant; near-OOD letters, font-digits:thin|regular|bold, uci-digits;
transformed inverted:SPEC, vflip:SPEC, rot90:SPEC, hflip:SPEC; see genood.data.probes, and
docs/detection.md for the validation and held-out probes).

Images: --in is split by a seeded permutation; --holdout of it (half to fit, half to calibrate
the threshold at --target-fpr) never enters the metrics; or give --calibration SPEC instead.
Metrics: AUROC, AUPR-in, AUPR-out, FPR@95 with OOD as the positive class, and FPR, TPR and
detection accuracy at the calibrated threshold. Written to --save: detection.json,
scores.npz (per-sample scores) and detectors/<score>/ (the calibrated detectors).

Guard demo: --guard CLASSIFIER_DIR (from `genood train-classifier`) reports, per score, the
rejection rate on --in, the classifier's accuracy on the accepted --in images and the
rejection rate on --out. The classifier sees the images as loaded, the detector the run's
preprocessing of them. --guard also gives the classifier that the baselines msp and energy read
(on the images as loaded), so they sit in the tables next to the density scores.""",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of a trained model")
    parser.add_argument(
        "--score",
        default=None,
        help="comma-separated score specs (default " + DEFAULTS_PLACEHOLDER + ": the recommended "
        "detector first; with --guard, the recommended gate, which also reads the classifier, "
        "before it; ratio is skipped, with a note, when the run has no background model)",
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
    add_limit_option(parser, "use")
    parser.add_argument("--save", type=Path, help="output folder (default RUN/detect/IN-vs-OUT)")
    parser.add_argument("--guard", type=Path, help="classifier folder for the guard demo")
    parser.add_argument("--seed", type=int, default=0, help="hold-out split and bootstrap seed")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_hparam_option(parser)
    parser.add_argument(
        "--pad-to", type=int, help="override the recorded padding (for a set of another shape)"
    )
    parser.add_argument("--channels", type=int, help="override the recorded channel conversion")
    parser.add_argument("--resize", type=int, help="override the recorded resize")
    parser.add_argument("--workers", type=int, default=1, help="threads for the codec")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", type=Path, help="data folder (else GENOOD_DATA, the cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``genood detect``: options -> :class:`~genood.experiments.detect.DetectJob`."""
    from genood.experiments.detect import DetectJob, run_detect, split_specs

    job = DetectJob(
        run=args.run,
        in_spec=args.in_spec,
        out_specs=split_specs(args.out_specs),
        scores=args.score,
        calibration=args.calibration,
        holdout=args.holdout,
        target_fpr=args.target_fpr,
        codec=args.codec,
        background=args.background,
        ensemble=args.ensemble,
        bootstrap=args.bootstrap,
        limit=check_limit(args.limit),
        save=args.save,
        guard=args.guard,
        seed=args.seed,
        batch_size=args.batch_size,
        hparams=hparam_overrides(args.hparams),
        workers=args.workers,
        device=args.device,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        pad_to=args.pad_to,
        channels=args.channels,
        resize=args.resize,
    )
    run_detect(job)
    return 0
