"""The ``genood`` command: argument parsing only; each command is a thin call into the packages.

Each command lives in its own module under ``genood.cli`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` to a handler
``handler(args) -> int``. Heavy imports (torch, matplotlib) happen inside handlers so that
``genood --help`` is instant.

Error contract: a command that fails prints one line, ``genood COMMAND: error: MESSAGE``, on
stderr and exits with status 1 (2 for usage errors, 130 when interrupted); the message names the
file or option at fault and, where one exists, the fix. Filesystem errors (``OSError``: a
read-only or missing folder, a folder given for a file, a full disk) are reported with the path
and the system's reason. Only a data set that no source has spans several lines: its message
lists each source tried. ``--debug`` shows the traceback instead; an unexpected exception (a bug)
says so and asks for ``--debug``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import sys
from pathlib import Path

from genood import __version__
from genood.allocator import keep_freed_memory

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
        keep_freed_memory()  # glibc: no page faults per step for large tensors (see the module)
        check_data_dir(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if getattr(args, "debug", False):
            raise
        print(f"genood {args.command}: error: {describe_error(error)}", file=sys.stderr)
        return 1


# What to do about common filesystem errors, by errno.
_OS_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose a folder on a writable file system",
    errno.ENOSPC: "free some disk space or choose another folder",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of that path is a file, not a folder",
    errno.ENOENT: "check the path",
    errno.EEXIST: "remove it or choose another path",
}


def describe_error(error: BaseException) -> str:
    """The one-line message of a failed command (see the module docstring)."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        where = str(error.filename)
        if error.filename2 is not None:
            where += f" -> {error.filename2}"
        hint = _OS_HINTS.get(error.errno or 0)
        return f"{where}: {error.strerror}" + (f"; {hint}" if hint else "")
    if isinstance(error, MemoryError):
        return "out of memory; use a smaller data set (--limit) or batch size"
    if isinstance(error, FileNotFoundError | ValueError | TypeError | RuntimeError | OSError):
        return str(error) or type(error).__name__
    first = (str(error).splitlines() or [""])[0]
    return (
        f"unexpected {type(error).__name__}: {first} (a bug in genood: rerun with --debug for "
        "the traceback and report it)"
    )


def check_data_dir(args: argparse.Namespace) -> None:
    """An explicit ``--data-dir`` must be an existing folder (a typo would be ignored else)."""
    data_dir = getattr(args, "data_dir", None)
    if data_dir and not Path(data_dir).expanduser().is_dir():
        state = "is not a folder" if Path(data_dir).expanduser().exists() else "does not exist"
        raise FileNotFoundError(
            f"--data-dir {data_dir} {state}; give the folder that holds the raw data files, or "
            "leave --data-dir out to use GENOOD_DATA and the cache"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
