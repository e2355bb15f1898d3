"""Likelihoods tracked during training: the paper's "during optimization" plot (C5).

:mod:`genood.train` logs one ``eval`` event per evaluation to ``metrics.jsonl``::

    {"event": "eval", "step": 500, "eval_bpd": 3.1, "track_bpd": {"mnist-10k": 2.4}, ...}

where ``eval_bpd`` is the held-out (in-distribution) set and ``track_bpd`` the tracked OOD sets.
:func:`eval_rows` flattens those events into plot rows and :func:`tracked_curves` picks the
in-distribution and one OOD curve for the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

IN_KEY = "eval_bpd"
TRACK_KEY = "track_bpd"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def eval_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Flatten evaluation events into ``{"step", "eval_bpd", "track_bpd[<set>]", ...}`` rows.

    Records with an ``event`` other than ``"eval"`` are skipped (records without one are kept,
    so plain rows pass through); nested dicts become ``key[name]`` columns; non-numeric and
    non-finite values and the ``time`` stamp are dropped. Rows are sorted by step.
    """
    rows = []
    for record in records:
        if record.get("event", "eval") != "eval" or not _number(record.get("step")):
            continue
        row: dict[str, float] = {"step": record["step"]}
        for key, value in record.items():
            if key in ("step", "time", "event"):
                continue
            if isinstance(value, Mapping):
                row.update({f"{key}[{name}]": v for name, v in value.items() if _number(v)})
            elif _number(value):
                row[key] = value
        rows.append(row)
    return sorted(rows, key=lambda r: r["step"])


def tracked_curves(
    records: Sequence[Mapping[str, Any]], ood: str | None = None, in_key: str = IN_KEY
) -> dict[str, Any]:
    """The in-distribution and one OOD bits/dim curve at the steps where both were evaluated.

    Args:
        records: ``metrics.jsonl`` events (or rows from :func:`eval_rows`).
        ood: the tracked set's name; default the first one logged.
        in_key: the in-distribution column.

    Returns:
        ``{"ood": name, "steps": [...], "in_bpd": [...], "ood_bpd": [...]}``, the arguments of
        the C5 verdict; empty lists when nothing was evaluated.
    """
    rows = eval_rows(records)
    tracked = [k for row in rows for k in row if k.startswith(f"{TRACK_KEY}[")]
    if ood is None:
        key = tracked[0] if tracked else None
    else:
        key = f"{TRACK_KEY}[{ood}]"
        if rows and key not in tracked:
            names = sorted({k[len(TRACK_KEY) + 1 : -1] for k in tracked})
            raise KeyError(f"OOD set {ood!r} was not tracked during training; tracked: {names}")
    if key is None:
        return {"ood": ood, "steps": [], "in_bpd": [], "ood_bpd": []}
    both = [r for r in rows if in_key in r and key in r]
    return {
        "ood": key[len(TRACK_KEY) + 1 : -1] if key else ood,
        "steps": [int(r["step"]) for r in both],
        "in_bpd": [float(r[in_key]) for r in both],
        "ood_bpd": [float(r[key]) for r in both],
    }


def curve_labels(rows: Sequence[Mapping[str, Any]], in_label: str = "held-out") -> dict[str, str]:
    """Display names for :func:`eval_rows` columns: the tracked set's name, ``in_label``."""
    labels = {IN_KEY: in_label}
    for row in rows:
        for key in row:
            if key.startswith(f"{TRACK_KEY}["):
                labels[key] = key[len(TRACK_KEY) + 1 : -1]
    return labels


__all__ = ["curve_labels", "eval_rows", "tracked_curves"]
