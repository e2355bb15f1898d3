"""Resuming a run whose folder was moved or copied: the same data under another path.

A run records its training set as it was given, so a file the run keeps in its own folder tree
(``genood reproduce`` writes its hold-out splits to ``RUN/data/in-train.npz`` and trains with
``npz:RUN/data/in-train.npz``) is recorded under an absolute path. Moving or copying the tree
changes that path and nothing else, and resume must not then refuse the run as trained on other
data.

:func:`same_moved_data` decides when a changed ``npz:`` spec still names the same data: the new
file lies in the tree that also holds the checkpoint, the old path ends with the new file's path
relative to that tree (the tree was moved or copied whole), and, where the old file still
exists (a copy), both files hold the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PREFIX = "npz:"


def same_moved_data(old_spec: object, new_spec: object, checkpoint: Path) -> bool:
    """Whether ``new_spec`` names the data of ``old_spec`` after its run's tree moved.

    Args:
        old_spec: the data spec the checkpoint was trained on.
        new_spec: the data spec of the resuming config.
        checkpoint: the checkpoint being resumed, at its current place.
    """
    if not (isinstance(old_spec, str) and isinstance(new_spec, str)):
        return False
    if not (old_spec.startswith(PREFIX) and new_spec.startswith(PREFIX)):
        return False
    old = Path(old_spec.removeprefix(PREFIX))
    new = Path(new_spec.removeprefix(PREFIX)).resolve()
    if not new.is_file():
        return False
    root = Path(os.path.commonpath([new, checkpoint.resolve()]))
    inside = new.relative_to(root).parts
    if root == Path(root.anchor) or len(inside) < 2:
        return False  # not a file the run keeps in its own tree
    if old.parts[-len(inside) :] != inside:
        return False
    return not old.is_file() or _digest(old) == _digest(new)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
