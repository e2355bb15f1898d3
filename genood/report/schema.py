"""The ``results.json`` schema, checked by hand (no jsonschema dependency).

::

    {"experiment": str, "budget": str, "created": ISO time, "genood_version": str,
     "runtime_s": float >= 0, "num_dims": int >= 1,
     "in_distribution": "<name>:<split>", "ood": ["<name>:<split>", ...],
     "datasets": {"<name>:<split>": {"bpd_mean", "bpd_std", "n", [log_pz_bpd_mean],
                                     [logdet_bpd_mean], ...}},
     "detection": {"<score>": {"auroc", "aupr_in", "aupr_out", "fpr95", [auroc_ci], ...}},
     "claims": [{"id": "C1", "claim", "measured", "reproduced": bool,
                 "status": "reproduced" | "not reproduced" | "not run at this budget"}],
     "figures": {"<key>": "figures/<file>.png"},      # relative to the run folder
     "scaled_down": [str, ...],
     "analyses": {...},                               # free-form per analysis
     ["figure_captions": {"<key>": str}]}             # optional

The in-distribution set and every OOD set must have a row in ``datasets``; detection metrics are
in ``[0, 1]`` with OOD as the positive class; a claim's ``status`` and ``reproduced`` must agree
(a claim not run is never reproduced). Keys beyond these are allowed (``EXTRA_KEYS`` are those
``genood reproduce`` writes). ``docs/results-json.md`` documents every key named here.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

# docs/results-json.md documents every key named here; tests/report/test_schema.py checks that.
REQUIRED_KEYS = (
    "experiment", "budget", "created", "genood_version", "runtime_s", "num_dims",
    "in_distribution", "ood", "datasets", "detection", "claims", "figures", "scaled_down",
    "analyses",
)  # fmt: skip
OPTIONAL_KEYS = ("expect_phenomenon", "figure_captions")
# Written by ``genood reproduce`` and not validated: the resolved config and the main model,
# and with ``--guard`` the classifier and its guard figures.
EXTRA_KEYS = ("missing_ood", "config", "model", "classifier", "guard")
DATASET_KEYS = ("bpd_mean", "bpd_std", "n")
OPTIONAL_DATASET_KEYS = ("log_pz_bpd_mean", "logdet_bpd_mean")
CLAIM_KEYS = ("id", "claim", "measured", "reproduced", "status")
STATUSES = ("reproduced", "not reproduced", "not run at this budget")
DETECTION_METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95")
FIGURE_SUFFIXES = (".png", ".svg")
_CLAIM_ID = re.compile(r"^C\d+$")


def _fail(path: str, message: str) -> None:
    raise ValueError(f"results.json: {path}: {message}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _expect(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        _fail(path, f"expected {what}, got {_type_name(value)} {value!r:.60}")


def _number(value: Any, path: str, low: float | None = None, high: float | None = None) -> None:
    _expect(value, (int, float), path, "a number")
    if not math.isfinite(value):
        _fail(path, f"expected a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(path, f"expected a number in [{low}, {high}], got {value!r}")


def _string(value: Any, path: str, nonempty: bool = True) -> None:
    _expect(value, str, path, "a string")
    if nonempty and not value.strip():
        _fail(path, "expected a non-empty string")


def _mapping(value: Any, path: str) -> dict:
    _expect(value, dict, path, "an object")
    return value


def _row(value: Any, base: str, keys: tuple[str, ...]) -> dict:
    """``value`` as an object that has every one of ``keys``."""
    row = _mapping(value, base)
    for key in keys:
        if key not in row:
            _fail(f"{base}.{key}", "missing")
    return row


def _datasets(value: Any) -> dict:
    datasets = _mapping(value, "datasets")
    if not datasets:
        _fail("datasets", "expected at least one data set")
    for label, row in datasets.items():
        base = f"datasets[{label!r}]"
        _row(row, base, DATASET_KEYS)
        _number(row["bpd_mean"], f"{base}.bpd_mean")
        _number(row["bpd_std"], f"{base}.bpd_std", low=0)
        _expect(row["n"], int, f"{base}.n", "an integer")
        if row["n"] < 1:
            _fail(f"{base}.n", f"expected at least 1 sample, got {row['n']}")
        for key in OPTIONAL_DATASET_KEYS:
            if key in row:
                _number(row[key], f"{base}.{key}")
    return datasets


def _detection(value: Any) -> None:
    for score, row in _mapping(value, "detection").items():
        base = f"detection[{score!r}]"
        _mapping(row, base)
        for key in DETECTION_METRICS:
            if key not in row:
                _fail(f"{base}.{key}", "missing")
            _number(row[key], f"{base}.{key}", 0.0, 1.0)
        if "auroc_ci" in row:
            ci = row["auroc_ci"]
            _expect(ci, list, f"{base}.auroc_ci", "a list [lo, hi]")
            if len(ci) != 2:
                _fail(f"{base}.auroc_ci", f"expected [lo, hi], got {ci!r}")
            for i, bound in enumerate(ci):
                _number(bound, f"{base}.auroc_ci[{i}]", 0.0, 1.0)
            if ci[0] > ci[1]:
                _fail(f"{base}.auroc_ci", f"lower bound above upper bound: {ci!r}")


def _claims(value: Any) -> None:
    _expect(value, list, "claims", "a list")
    seen = set()
    for index, claim in enumerate(value):
        base = f"claims[{index}]"
        _row(claim, base, CLAIM_KEYS)
        _string(claim["id"], f"{base}.id")
        if not _CLAIM_ID.match(claim["id"]):
            _fail(f"{base}.id", f"expected an id like 'C1', got {claim['id']!r}")
        if claim["id"] in seen:
            _fail(f"{base}.id", f"duplicate claim id {claim['id']!r}")
        seen.add(claim["id"])
        _string(claim["claim"], f"{base}.claim")
        _string(claim["measured"], f"{base}.measured", nonempty=False)
        _expect(claim["reproduced"], bool, f"{base}.reproduced", "true or false")
        if claim["status"] not in STATUSES:
            _fail(f"{base}.status", f"expected one of {STATUSES}, got {claim['status']!r}")
        if claim["reproduced"] != (claim["status"] == "reproduced"):
            _fail(
                f"{base}.reproduced",
                f"{claim['reproduced']} contradicts status {claim['status']!r}",
            )


def _figures(value: Any) -> None:
    for key, relative in _mapping(value, "figures").items():
        path = f"figures[{key!r}]"
        _string(relative, path)
        posix = PurePosixPath(relative)
        if posix.is_absolute() or ".." in posix.parts or "\\" in relative or ":" in relative:
            _fail(path, f"expected a path relative to the run folder, got {relative!r}")
        if posix.suffix.lower() not in FIGURE_SUFFIXES:
            _fail(path, f"expected a {' or '.join(FIGURE_SUFFIXES)} file, got {relative!r}")


def validate_results(obj: Any) -> None:
    """Raise ``ValueError`` naming the path of the first problem in a ``results.json`` object."""
    _mapping(obj, "(top level)")
    for key in REQUIRED_KEYS:
        if key not in obj:
            _fail(key, "missing")
    for key in ("experiment", "budget", "genood_version", "in_distribution"):
        _string(obj[key], key)
    _string(obj["created"], "created")
    try:
        datetime.fromisoformat(obj["created"])
    except ValueError:
        _fail("created", f"expected an ISO 8601 time, got {obj['created']!r}")
    _number(obj["runtime_s"], "runtime_s", low=0)
    _expect(obj["num_dims"], int, "num_dims", "an integer")
    if obj["num_dims"] < 1:
        _fail("num_dims", f"expected a positive integer, got {obj['num_dims']}")
    _expect(obj["ood"], list, "ood", "a list of data set labels")
    if not obj["ood"]:
        _fail("ood", "expected at least one OOD data set")
    for index, label in enumerate(obj["ood"]):
        _string(label, f"ood[{index}]")
    datasets = _datasets(obj["datasets"])
    for path, label in [("in_distribution", obj["in_distribution"])] + [
        (f"ood[{i}]", label) for i, label in enumerate(obj["ood"])
    ]:
        if label not in datasets:
            _fail(path, f"{label!r} has no row in datasets (rows: {sorted(datasets)})")
    _detection(obj["detection"])
    _claims(obj["claims"])
    _figures(obj["figures"])
    _expect(obj["scaled_down"], list, "scaled_down", "a list of strings")
    for index, item in enumerate(obj["scaled_down"]):
        _string(item, f"scaled_down[{index}]")
    _mapping(obj["analyses"], "analyses")
    if "expect_phenomenon" in obj:
        _expect(obj["expect_phenomenon"], bool, "expect_phenomenon", "true or false")
    if "figure_captions" in obj:
        for key, caption in _mapping(obj["figure_captions"], "figure_captions").items():
            _string(caption, f"figure_captions[{key!r}]", nonempty=False)


__all__ = [
    "CLAIM_KEYS",
    "DATASET_KEYS",
    "DETECTION_METRICS",
    "EXTRA_KEYS",
    "OPTIONAL_DATASET_KEYS",
    "OPTIONAL_KEYS",
    "REQUIRED_KEYS",
    "STATUSES",
    "validate_results",
]
