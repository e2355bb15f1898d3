"""Atomic file writes that honour the umask: the one recipe every genood writer uses.

Contract of :func:`atomic_path` (and of :func:`write_text_atomic`, :func:`write_bytes_atomic`,
:func:`save_npy_atomic`, built on it):

- the content goes to a temporary file in the target's folder (``.NAME.XXXX.tmp``), which is
  flushed and fsync'ed, then renamed over the target (``os.replace``: atomic on POSIX and
  Windows), and the folder is fsync'ed so that the rename itself survives a power cut; a process
  killed at any moment leaves either the previous file or the new one, never a torn file, and a
  failed write leaves no temporary file behind;
- the file gets the mode of a plain ``open(path, "w")``: ``0o666`` minus the process umask
  (``tempfile.mkstemp`` creates ``0o600`` files, which would make run folders unreadable to the
  other users of a shared machine);
- the target's folder is created when missing (with the umask's mode too).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` on Linux (no change, so no race with other
    threads creating files), else by setting and restoring it under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the block succeeds.

    The block writes the temporary file (by name, any way it likes); on success it is fsync'ed,
    given the umask's mode and renamed over ``path``. On an exception it is deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _fsync_file(temporary)
        os.chmod(temporary, plain_file_mode())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` (no pickles) to ``path`` atomically."""
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def save_npz_atomic(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez`` of named arrays to ``path`` atomically."""
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stubs read **arrays as allow_pickle


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy and torch scalars and arrays, paths.

    Anything else is refused (a silent ``str()`` would hide a bug in what is written).
    """
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars/arrays, tensors
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | Path) -> None:
    """fsync a folder, so that a rename into it is durable (a no-op on Windows)."""
    if os.name != "posix":  # Windows cannot open folders; its rename is durable enough
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "atomic_path",
    "current_umask",
    "fsync_dir",
    "plain_file_mode",
    "save_npy_atomic",
    "write_bytes_atomic",
    "write_text_atomic",
]
