"""``genood reproduce NAME``: one of the paper's experiments, end to end, with its report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` command."""
    from genood.experiments.spec import available
    from genood.experiments.text_spec import available as text_available

    parser = sub.add_parser(
        "reproduce",
        help="run one of the paper's experiments and write results.json and report.html",
        description="Reproduce an experiment of Nalisnick et al. (ICLR 2019) on real data: train "
        "the models it names (resuming what exists), score every data set, run the detectors "
        "and analyses, and write results.json and a self-contained report.html. Rerunning the "
        "same command after an interruption continues where it stopped.",
    )
    parser.add_argument(
        "experiment",
        help=f"one of: {', '.join(available() + text_available())}, or a TOML path",
    )
    parser.add_argument(
        "--budget",
        default="cpu",
        choices=["quick", "cpu", "paper"],
        help="quick: under 15 min on 2 cores (C1, C4, C6, C7 and detection); cpu: every claim "
        "in under 45 min on 2 cores (default); paper: the paper-scale GPU configuration",
    )
    parser.add_argument("--out", help="run folder (default runs/<experiment>-<budget>)")
    parser.add_argument("--data-dir", help="folder with raw data files (else GENOOD_DATA / cache)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument(
        "--guard",
        type=Path,
        metavar="CLF_DIR",
        help="a classifier from `genood train-classifier` on the in-distribution images as "
        "loaded: the detection table adds the recommended gate (genood.ood.RECOMMENDED_GATE) "
        "and the baselines mahalanobis, energy:2 and msp, with each as a gate in front of the "
        "classifier (in-distribution rejected, accuracy accepted, OOD rejected)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``genood reproduce``."""
    from genood.experiments.text_spec import is_text_experiment

    runner: Callable[..., Path]
    options = {}
    if is_text_experiment(args.experiment):  # issue 20: a language experiment, claim L1
        from genood.experiments.text_run import reproduce_text

        if args.guard is not None:
            raise ValueError(
                f"--guard puts an image classifier behind the gate; {args.experiment} is a text "
                "experiment: leave --guard out"
            )
        runner = reproduce_text
    else:
        from genood.experiments.reproduce import reproduce

        runner = reproduce
        options["guard"] = args.guard
    report = runner(
        args.experiment,
        budget=args.budget,
        out=args.out,
        data_dir=args.data_dir,
        device=args.device,
        progress=not args.no_progress,
        **options,
    )
    print(f"report: {report}")
    return 0
