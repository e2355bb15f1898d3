"""Figures that can be redrawn: each figure's inputs saved beside it as arrays.

:func:`save_figure` draws ``figures/<key>.png`` with a function of :mod:`genood.report.figures`
and stores its inputs in ``figure-data/<key>.npz``: arrays as npz entries, everything else
(labels, titles, nested dicts, lists of numbers) as a JSON document inside the same file, so
nothing is pickled. :func:`redraw_figures` draws them all again, which is what
``genood report RUN_DIR`` does before rendering ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genood.io import atomic_path
from genood.report.figures import FIGURES

FIGURE_DIR = "figures"
DATA_DIR = "figure-data"
_META = "__meta__"


def _pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every array in a nested structure by a reference into ``arrays``."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, dict):
        return {"__dict__": [[str(k), _pack(v, arrays)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_pack(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} as figure data")


def _unpack(value: Any, arrays: Any) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return arrays[value["__array__"]]
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _unpack(v, arrays) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def save_figure(run_dir: str | Path, key: str, kind: str, **inputs: Any) -> str:
    """Draw figure ``kind`` into ``run_dir/figures/<key>.png`` and keep its inputs.

    Args:
        run_dir: the run folder.
        key: the figure's name, a file stem (letters, digits, ``-``, ``_``).
        kind: a function name of :mod:`genood.report.figures` (see ``FIGURES``).
        **inputs: that function's arguments except ``path``.

    Returns:
        The PNG's path relative to ``run_dir`` (``figures/<key>.png``), for ``results.json``.
    """
    if kind not in FIGURES:
        raise ValueError(f"unknown figure kind {kind!r}; known: {', '.join(FIGURES)}")
    if not key or not all(ch.isalnum() or ch in "-_" for ch in key):
        raise ValueError(f"figure key must be letters, digits, '-' or '_', got {key!r}")
    run = Path(run_dir)
    relative = f"{FIGURE_DIR}/{key}.png"
    FIGURES[kind](path=run / relative, **inputs)
    arrays: dict[str, np.ndarray] = {}
    meta = {"kind": kind, "path": relative, "inputs": _pack(inputs, arrays)}
    data = run / DATA_DIR / f"{key}.npz"
    with atomic_path(data) as temporary, open(temporary, "wb") as f:
        arrays[_META] = np.array(json.dumps(meta))
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # stubs: **arrays as allow_pickle
    return relative


def redraw_figures(run_dir: str | Path) -> dict[str, str]:
    """Redraw every figure saved by :func:`save_figure`; returns ``{key: relative path}``."""
    run = Path(run_dir)
    drawn = {}
    for data in sorted((run / DATA_DIR).glob("*.npz")):
        with np.load(data, allow_pickle=False) as stored:
            meta = json.loads(str(stored[_META]))
            inputs = _unpack(meta["inputs"], stored)
            kind = meta["kind"]
            if kind not in FIGURES:
                raise ValueError(f"{data}: unknown figure kind {kind!r}")
            FIGURES[kind](path=run / meta["path"], **inputs)
        drawn[data.stem] = meta["path"]
    return drawn


__all__ = ["DATA_DIR", "FIGURE_DIR", "redraw_figures", "save_figure"]
