"""``genood report RUN_DIR``: re-render a run's ``report.html`` from its ``results.json``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="re-render RUN_DIR/report.html from results.json and the saved figure data",
        description=(
            "Write RUN_DIR/report.html, a single self-contained page (figures embedded) led by "
            "the verdict table, from RUN_DIR/results.json. Figures whose inputs were saved in "
            "RUN_DIR/figure-data/ are redrawn first, unless --no-redraw."
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

    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not (run_dir / "results.json").is_file():
        raise FileNotFoundError(
            f"{run_dir / 'results.json'} does not exist; run `genood reproduce` first"
        )
    if not args.no_redraw and (run_dir / DATA_DIR).is_dir():
        redrawn = redraw_figures(run_dir)
        print(f"redrew {len(redrawn)} figures in {run_dir / 'figures'}")
    print(render(run_dir))
    return 0
