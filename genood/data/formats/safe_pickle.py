"""A restricted unpickler for the pickled data formats (CIFAR-10 python batches, ImageNet32).

``pickle.load`` on a downloaded file runs whatever callable the file names: a data file is
untrusted input, so these formats are read with an unpickler whose ``find_class`` hands out only
what they need, which is numpy's array and dtype reconstructors (and Python 2's way of storing
bytes), and refuses everything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``...)
with :class:`UnsafePickleError` *before* anything is called. Plain containers (dict, list, tuple,
str, bytes, int, float) need no ``find_class`` and load as usual.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from genood.data.errors import DataFormatError, UnsafePickleError

try:  # numpy >= 2 moved numpy.core to numpy._core; pickles name either one.
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Python 3 pickles (protocol < 3) store bytes as ``_codecs.encode(text, 'latin1')``."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], Callable[..., Any]]:
    allowed: dict[tuple[str, str], Callable[..., Any]] = {("_codecs", "encode"): _latin1_encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = _multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = _numeric._frombuffer  # type: ignore[attr-defined]  # private, absent from numpy's stubs
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


ALLOWED = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only numpy arrays, dtypes and scalars besides plain containers."""

    def __init__(self, file: BinaryIO, where: str) -> None:
        # latin1 turns Python 2 ``str`` (CIFAR's keys and array bytes) into str losslessly.
        super().__init__(file, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED.get((module, name))
        if target is None:
            raise UnsafePickleError(
                f"{self.where}: refusing to unpickle {module}.{name}: this data file tries to "
                "build or call something that a CIFAR-10/ImageNet32 batch never contains (a "
                "pickle can run arbitrary code). Only numpy arrays and plain containers are "
                "allowed; get the file again from its official source."
            )
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.where}: persistent ids are not allowed in data files")


def safe_loads(data: bytes, where: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; ``where`` names it in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as error:
        raise DataFormatError(
            f"{where}: not a valid pickle ({error}); truncated or corrupt?"
        ) from error


def safe_load(path: Path) -> Any:
    """Unpickle the file at ``path`` safely; see :func:`safe_loads`."""
    return safe_loads(Path(path).read_bytes(), str(path))


def batch_dict(obj: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Check that an unpickled batch is a dict with ``keys``; bytes keys become str."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a pickled dict, found {type(obj).__name__}")
    normalised = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    missing = [k for k in keys if k not in normalised]
    if missing:
        raise DataFormatError(
            f"{where}: the batch has no {missing} entries; expected keys {list(keys)}, "
            f"found {sorted(map(str, normalised))}"
        )
    return normalised
