"""The text measurements (bits per character, compressor bits, AUROCs) and the claim L1.

Per set, from per-sample scores of one byte model (:mod:`genood.models.bytelm`):

* ``bpc``: the model's bits per character, ``-log2 p(x) / m`` (``m``: the text's bytes and its
  end marker, padding excluded; a "character" is a byte);
* ``zlib_bpc`` / ``lzma_bpc``: a general-purpose compressor's bits for the same text bytes (raw
  DEFLATE at level 9, raw LZMA2 at preset 9 with a 4 KiB dictionary: no container header or checksum), divided by the
  same ``m``; on texts of 128 bytes or fewer both are poor compressors, but they rank simple
  texts below complex ones, which is all the correction needs;
* three OOD scores, higher = more anomalous, each with its AUROC against the in-distribution
  test set (OOD positive; 0.5 is chance, below 0.5 the score prefers the OOD set):
  ``likelihood`` = ``bpc``; ``typicality`` = ``|bpc - h|`` with ``h`` the mean bpc of training
  texts (Nalisnick et al. 2019b, one text at a time); ``complexity`` = ``bpc - zlib_bpc`` (Serra et
  al. 2020's ``S(x)``, the model's code length minus the compressor's; the brief's "compressor
  bits minus the model's" with its sign turned so that higher is more anomalous), and
  ``complexity:lzma`` the same with LZMA.

**L1** ("does a text model trained on one corpus give higher likelihood to another, simpler
one?") is judged on the forward direction. A set is *simpler* when its mean ``zlib_bpc`` is
below the in-distribution test set's; it is *preferred* when its mean ``bpc`` is below the test
set's and the likelihood AUROC is below 0.5. L1 is "reproduced" when at least one simpler set is
preferred, "not reproduced" otherwise; the row lists every simpler set and, separately, any set
that is preferred without being simpler (the likelihood then prefers something other than
simplicity). The reverse direction's outcome is reported beside it, never folded into it.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from genood.ood.metrics import auroc, auroc_interval

L1_CLAIM = (
    "A text model trained on one corpus gives another, simpler corpus higher likelihood "
    "(lower bits per character) than its own held-out test set."
)
SCORES = ("likelihood", "typicality", "complexity", "complexity:lzma")


def deflate_bits(data: bytes) -> int:
    """Bits of raw DEFLATE (zlib level 9, no header or checksum) of ``data``."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return 8 * len(compressor.compress(data) + compressor.flush())


def lzma_bits(data: bytes) -> int:
    """Bits of raw LZMA2 (preset 9, no container) of ``data``.

    The dictionary is 4 KiB, not preset 9's 64 MiB: a text is at most a few hundred bytes, so
    the output is the same, and allocating 64 MiB per text took 60 ms each.
    """
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 1 << 12}]
    return 8 * len(lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters))


def compressor_bits(rows: np.ndarray) -> dict[str, np.ndarray]:
    """``zlib`` and ``lzma`` bits of each encoded text's bytes (``(N, 1, 1, L)`` uint8 rows)."""
    flat = np.asarray(rows, dtype=np.uint8).reshape(len(rows), -1)
    texts = [row.tobytes().split(b"\0", 1)[0] for row in flat]
    return {
        "zlib": np.array([deflate_bits(t) for t in texts], dtype=np.float64),
        "lzma": np.array([lzma_bits(t) for t in texts], dtype=np.float64),
    }


def ood_scores(sample: Mapping[str, np.ndarray], typical: float) -> dict[str, np.ndarray]:
    """The per-sample OOD scores of :data:`SCORES` (higher = more anomalous)."""
    bpc = sample["bpc"]
    return {
        "likelihood": bpc,
        "typicality": np.abs(bpc - typical),
        "complexity": bpc - sample["zlib_bpc"],
        "complexity:lzma": bpc - sample["lzma_bpc"],
    }


def set_summary(sample: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean and spread of one set's per-sample figures."""
    return {
        "n": len(sample["bpc"]),
        "bpc": float(np.mean(sample["bpc"])),
        "bpc_std": float(np.std(sample["bpc"])),
        "zlib_bpc": float(np.mean(sample["zlib_bpc"])),
        "lzma_bpc": float(np.mean(sample["lzma_bpc"])),
        "mean_bytes": float(np.mean(sample["length"])),
        "truncated": float(np.mean(sample["truncated"])),
    }


def detection(
    in_sample: Mapping[str, np.ndarray],
    ood_sample: Mapping[str, np.ndarray],
    typical: float,
    bootstrap: int,
) -> dict[str, dict[str, float]]:
    """AUROC (and its bootstrap 95 % interval when ``bootstrap > 0``) of each score."""
    in_scores, out_scores = ood_scores(in_sample, typical), ood_scores(ood_sample, typical)
    rows: dict[str, dict[str, float]] = {}
    for name in SCORES:
        row = {"auroc": auroc(in_scores[name], out_scores[name])}
        if bootstrap > 0:
            low, high = auroc_interval(in_scores[name], out_scores[name], bootstrap)
            row.update(low=low, high=high)
        rows[name] = row
    return rows


def direction_findings(direction: Mapping[str, Any]) -> dict[str, list[str]]:
    """The sets of one direction that are simpler, and the sets the likelihood prefers."""
    sets, in_label = direction["sets"], direction["in_test"]
    ref = sets[in_label]
    simpler, preferred = [], []
    for label in direction["ood"]:
        row = sets[label]
        if row["zlib_bpc"] < ref["zlib_bpc"]:
            simpler.append(label)
        if row["bpc"] < ref["bpc"] and direction["detection"][label]["likelihood"]["auroc"] < 0.5:
            preferred.append(label)
    return {"simpler": simpler, "preferred": preferred}


def l1_verdict(forward: Mapping[str, Any], reverse: Mapping[str, Any] | None) -> dict[str, Any]:
    """The L1 row (see the module doc for the rule)."""
    found = direction_findings(forward)
    ref = forward["sets"][forward["in_test"]]
    both = [s for s in found["simpler"] if s in found["preferred"]]
    other = [s for s in found["preferred"] if s not in found["simpler"]]

    def describe(labels: Sequence[str]) -> str:
        rows = forward["sets"]
        parts = [
            f"{s} {rows[s]['bpc']:.3f} bits/char (AUROC "
            f"{forward['detection'][s]['likelihood']['auroc']:.3f})"
            for s in labels
        ]
        return ", ".join(parts) or "none"

    measured = (
        f"trained on {forward['in_train']}: held-out {forward['in_test']} {ref['bpc']:.3f} "
        f"bits/char (zlib {ref['zlib_bpc']:.3f}). Simpler sets (lower zlib bits/char): "
        f"{', '.join(found['simpler']) or 'none'}. Simpler and more likely: {describe(both)}. "
        f"More likely without being simpler: {describe(other)}."
    )
    if reverse is not None:
        back = direction_findings(reverse)
        measured += (
            f" Reverse (trained on {reverse['in_train']}): more likely than its test set: "
            f"{', '.join(back['preferred']) or 'none'}."
        )
    reproduced = bool(both)
    return {
        "id": "L1",
        "claim": L1_CLAIM,
        "measured": measured,
        "reproduced": reproduced,
        "status": "reproduced" if reproduced else "not reproduced",
    }
