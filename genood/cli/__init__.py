"""The ``genood`` command: argument parsing only; each command is a thin call into the packages.

Each command lives in its own module under ``genood.cli`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` to a handler
``handler(args) -> int``. Heavy imports (torch, matplotlib) happen inside handlers so that
``genood --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from genood import __version__

# Command modules, in the order ``genood --help`` lists them.
COMMAND_MODULES = [
    "data",
    "train",
    "score",
    "detect",
    "classifier",
    "reproduce",
    "report",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command module's sub-parser."""
    parser = argparse.ArgumentParser(
        prog="genood",
        description="Does my generative model know what it doesn't know? "
        "Train likelihood models, score data sets, detect out-of-distribution inputs and "
        "reproduce Nalisnick et al. (ICLR 2019).",
    )
    parser.add_argument("--version", action="version", version=f"genood {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"genood.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genood`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, KeyError, TypeError, RuntimeError) as error:
        if getattr(args, "debug", False):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"genood {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
