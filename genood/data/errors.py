"""Errors of the data layer: every one names the file or data set and what was expected."""

from __future__ import annotations

from collections.abc import Sequence


class DataFormatError(ValueError):
    """A data file is not in the format its name promises (corrupt, truncated, wrong keys...)."""


class ChecksumError(DataFormatError):
    """A file's sha256 differs from the published one: it is corrupt or not the official file."""


class UnsafePickleError(DataFormatError):
    """A pickled data file asks to build an object that a data file has no business building."""


class DataNotFoundError(FileNotFoundError):
    """No source could provide a data set; the message lists every source tried and why.

    Attributes:
        name: the data set (``fashion-mnist``...).
        tried: one line per source tried, in order, with the reason it failed.
        hint: how to get the data (a ``genood data fetch`` command, which file to put where).
    """

    def __init__(self, name: str, tried: Sequence[str], hint: str) -> None:
        self.name = name
        self.tried = list(tried)
        self.hint = hint
        lines = [f"data set {name!r} was not found; sources tried, in order:"]
        lines += [f"  {i}. {line}" for i, line in enumerate(self.tried, 1)]
        lines.append(hint)
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        return str(self.args[0])

    def summary(self) -> str:
        """The whole message on one line (for logs and JSON records): every source and the hint."""
        tried = "; ".join(f"{i}. {line}" for i, line in enumerate(self.tried, 1))
        text = f"data set {self.name!r} was not found (sources tried: {tried}); {self.hint}"
        return " ".join(text.splitlines())
