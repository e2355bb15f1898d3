"""Options several commands share, with one meaning everywhere.

``--limit N`` keeps the first ``N`` images of a set; it must be at least 1, and leaving it out
means every image. ``--limit 0`` is refused with a one-line error (it used to mean "all" in some
commands and "none" in others).
"""

from __future__ import annotations

import argparse


def add_limit_option(parser: argparse.ArgumentParser, what: str = "use") -> None:
    """``--limit N`` (default: every image); check the value with :func:`check_limit`."""
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"{what} only the first N images (N >= 1; default: all)",
    )


def check_limit(limit: int | None, option: str = "--limit") -> int | None:
    """``limit`` itself when it is ``None`` or at least 1.

    Raises:
        ValueError: for 0 or a negative value, naming the option and the fix.
    """
    if limit is not None and limit < 1:
        raise ValueError(
            f"{option} must be at least 1, got {limit}; leave {option} out to use every image"
        )
    return limit
