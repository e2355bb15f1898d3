"""The run-folder lock: one writer at a time.

Contract: a process that writes to a run folder (``genood train``, ``train-background``,
``genood score`` when it saves) first takes ``RUN/.lock`` with ``fcntl.flock(LOCK_EX |
LOCK_NB)``. A second writer does not wait: it fails at once with :class:`RunLockedError`, one
line naming the holder (pid, host, command, start time) read from the lock file. The lock is
released when the ``with`` block ends, and by the kernel when the holder dies in any way
(``kill -9``, a crash, a power cut), so a stale lock never blocks anybody; the file itself stays
(deleting a lock file is racy) and only its content tells who held it last.

Within one process the lock is re-entrant: a process that already holds a folder's lock (a
pipeline that trains and then scores) may take it again. On systems without ``fcntl`` (Windows)
nothing is locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"

# Locks this process holds: resolved folder -> [file descriptor, depth].
_HELD: dict[Path, list[int]] = {}
_HELD_LOCK = threading.Lock()


class RunLockedError(RuntimeError):
    """Another process writes to the run folder; the message names it."""


class RunLock:
    """``with RunLock(run_dir):`` hold ``run_dir/.lock`` for the block (see the module doc)."""

    def __init__(self, root: str | Path, command: str | None = None) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.command = command if command is not None else " ".join(["genood", *sys.argv[1:]])
        self._key: Path | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` at once (never waits)."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        with _HELD_LOCK:
            if key in _HELD:
                _HELD[key][1] += 1
                self._key = key
                return
            if fcntl is None:  # pragma: no cover - Windows
                _HELD[key] = [-1, 1]
                self._key = key
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_holder(fd))
                os.close(fd)
                raise RunLockedError(
                    f"{self.root} is in use by {holder}; wait for it to finish (or stop it), or "
                    "write to another folder"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            _write_holder(fd, self.command)
            _HELD[key] = [fd, 1]
            self._key = key

    def release(self) -> None:
        """Give the lock back (the outermost release of this process unlocks the file)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_LOCK:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
            fd = entry[0]
            if fd >= 0:
                try:
                    os.ftruncate(fd, 0)  # nobody holds it now
                finally:
                    os.close(fd)  # closing the descriptor releases the flock


def holder(root: str | Path) -> dict[str, Any]:
    """What the lock file of ``root`` says about its last holder (``{}`` when empty/absent)."""
    path = Path(root) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _write_holder(fd: int, command: str) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record, sort_keys=True) + "\n").encode(), 0)
    os.fsync(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        record = json.loads(data.decode("utf-8", errors="replace") or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "another process (it has not written its name yet)"
    return (
        f"pid {record.get('pid', '?')} on {record.get('host', '?')} "
        f"({record.get('command', '?')}, since {record.get('started', '?')})"
    )


__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "holder"]
