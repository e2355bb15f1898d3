"""Options several commands share, defined once so that they mean and read the same everywhere.

* :func:`add_runtime_options`: ``--device``, ``--data-dir``, ``--no-progress``, ``--debug``.
* :func:`add_limit_option` / :func:`check_limit`: ``--limit N`` keeps the first ``N`` images of a
  set; it must be at least 1, and leaving it out means every image. ``--limit 0`` is refused with
  a one-line error (it used to mean "all" in some commands and "none" in others).
* :func:`add_key_value_option`: a repeatable ``--flag KEY=VALUE ...`` (``train --set``).
* :func:`add_hparam_option` / :func:`hparam_overrides`: ``--hparam KEY=VALUE ...``, a trained
  model's scoring settings changed for one command (``score``, ``detect``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEVICES = ["auto", "cpu", "cuda"]


def add_runtime_options(
    parser: argparse.ArgumentParser,
    device_default: str | None = "auto",
    device_help: str = "where to run (default auto: CUDA when present)",
) -> None:
    """Add ``--device``, ``--data-dir``, ``--no-progress`` and ``--debug`` to ``parser``.

    ``device_default=None`` leaves ``args.device`` unset unless given (``train`` then keeps the
    config's ``train.device``).
    """
    parser.add_argument("--device", default=device_default, choices=DEVICES, help=device_help)
    parser.add_argument("--data-dir", type=Path, help="data folder (else GENOOD_DATA, the cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def add_key_value_option(parser: argparse.ArgumentParser, flag: str, dest: str, help: str) -> None:
    """``FLAG KEY=VALUE ...``, repeatable; the strings collect in ``args.<dest>`` (a list)."""
    parser.add_argument(
        flag, dest=dest, action="extend", nargs="+", default=[], metavar="KEY=VALUE", help=help
    )


def add_hparam_option(parser: argparse.ArgumentParser) -> None:
    """``--hparam KEY=VALUE ...``: change how the trained model scores, for this command only."""
    add_key_value_option(
        parser,
        "--hparam",
        "hparams",
        "change a scoring setting of the run's model for this command, e.g. --hparam "
        "iw_samples=10 iw_batch=64 (a VAE's K and images x samples per pass); a setting that "
        "changes the trained parameters is refused",
    )


def hparam_overrides(items: list[str]) -> dict[str, Any]:
    """``["iw_samples=10"]`` -> ``{"iw_samples": 10}`` (values parse as TOML, else strings)."""
    from genood.config import apply_overrides

    return apply_overrides({}, items)


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


__all__ = [
    "DEVICES",
    "add_hparam_option",
    "add_key_value_option",
    "add_limit_option",
    "add_runtime_options",
    "check_limit",
    "hparam_overrides",
]
