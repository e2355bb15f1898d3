"""``genood report RUN_DIR``: write a run's ``report.html``.

A reproduction (``results.json``) gets the verdict report (:mod:`genood.report.html`); a plain
training run (``config.toml``, ``metrics.jsonl``) gets its training report
(:mod:`genood.report.training`); any other folder is refused in one line saying what is needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="write RUN_DIR/report.html for a reproduction or a plain training run",
        description=(
            "Write RUN_DIR/report.html, a single self-contained page (figures embedded). For a "
            "reproduction: led by the verdict table, from RUN_DIR/results.json; figures whose "
            "inputs were saved in RUN_DIR/figure-data/ are redrawn first, unless --no-redraw. "
            "For a plain training run (genood train): the training curve, bits/dim histograms "
            "of the sets scored with genood score, and the latest samples."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a genood run folder")
    parser.add_argument(
        "--no-redraw",
        action="store_true",
        help="embed the PNGs in RUN_DIR/figures as they are instead of redrawing them",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Redraw the figures (when their data are there), render, print the report's path."""
    from genood.report import redraw_figures, render
    from genood.report.store import DATA_DIR
    from genood.report.training import is_training_run, render_training

    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not (run_dir / "results.json").is_file():
        if is_training_run(run_dir):  # genood train's folder: curve, scored sets, samples
            print(render_training(run_dir))
            return 0
        raise FileNotFoundError(
            f"{run_dir} has neither results.json (genood reproduce) nor config.toml and "
            "metrics.jsonl (genood train); a report needs one of the two"
        )
    if not args.no_redraw and (run_dir / DATA_DIR).is_dir():
        redrawn = redraw_figures(run_dir)
        print(f"redrew {len(redrawn)} figures in {run_dir / 'figures'}")
    print(render(run_dir))
    return 0
