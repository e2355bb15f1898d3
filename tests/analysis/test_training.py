"""Curves from metrics.jsonl evaluation events (C5)."""

from __future__ import annotations

import pytest

from genood.analysis.training import curve_labels, eval_rows, tracked_curves

EVENTS = [
    {"event": "start", "step": 0, "time": 1.0},
    {"event": "train", "step": 50, "loss_bpd": 3.4, "time": 2.0},
    {"event": "eval", "step": 200, "eval_bpd": 3.0, "track_bpd": {"mnist": 2.5, "noise": 9.0}},
    {"event": "eval", "step": 100, "eval_bpd": 3.2, "track_bpd": {"mnist": 2.6}, "time": 3.0},
    {"event": "eval", "step": 300, "eval_bpd": float("nan"), "track_bpd": {"mnist": 2.4}},
]


def test_eval_rows_flatten_and_sort() -> None:
    rows = eval_rows(EVENTS)
    assert [r["step"] for r in rows] == [100, 200, 300]
    assert rows[1] == {
        "step": 200,
        "eval_bpd": 3.0,
        "track_bpd[mnist]": 2.5,
        "track_bpd[noise]": 9.0,
    }
    assert "eval_bpd" not in rows[2]  # NaN dropped
    assert curve_labels(rows, "fashion:test") == {
        "eval_bpd": "fashion:test",
        "track_bpd[mnist]": "mnist",
        "track_bpd[noise]": "noise",
    }


def test_tracked_curves() -> None:
    curves = tracked_curves(EVENTS)
    assert curves == {
        "ood": "mnist",
        "steps": [100, 200],
        "in_bpd": [3.2, 3.0],
        "ood_bpd": [2.6, 2.5],
    }
    assert tracked_curves(EVENTS, ood="noise")["steps"] == [200]
    with pytest.raises(KeyError, match="was not tracked"):
        tracked_curves(EVENTS, ood="svhn")
    assert tracked_curves([])["steps"] == []
