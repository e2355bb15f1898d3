"""The report of a text experiment (``results.json`` with ``"kind": "text"``) as ``report.html``.

It shows what :mod:`genood.experiments.text_run` measured and computes nothing new: the L1
verdict, then per direction one table with every set's bits per character, the compressors'
bits per character and the AUROC of each score against the held-out test set (with its
bootstrap 95 % interval when the budget drew one), and the histograms of bits per character
(``figures/bpc-<direction>.png``, embedded). ``genood report RUN_DIR`` re-renders it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genood.io import write_text_atomic
from genood.report.markup import duration, embedded_figure, esc, fmt, table

REQUIRED = ("kind", "experiment", "budget", "created", "runtime_s", "directions", "claims")
SCORE_NAMES = {
    "likelihood": "likelihood",
    "typicality": "typicality",
    "complexity": "complexity (zlib)",
    "complexity:lzma": "complexity (lzma)",
}


def validate_text_results(results: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first missing key or direction field."""
    for key in REQUIRED:
        if key not in results:
            raise ValueError(f"text results.json lacks {key!r}; rerun genood reproduce")
    if "forward" not in results["directions"]:
        raise ValueError("text results.json has no forward direction; rerun genood reproduce")
    for name, direction in results["directions"].items():
        for key in ("in_train", "in_test", "ood", "sets", "detection", "typical_bpc"):
            if key not in direction:
                raise ValueError(f"direction {name!r} of results.json lacks {key!r}")


def _auroc_cell(row: Mapping[str, float]) -> str:
    cell = fmt(row["auroc"])
    if "low" in row:
        cell += f'<br><span class="ci">[{fmt(row["low"])}, {fmt(row["high"])}]</span>'
    return cell


def direction_table(name: str, direction: Mapping[str, Any]) -> str:
    """One direction's table: every set, its bits per character and each score's AUROC."""
    sets, test = direction["sets"], direction["in_test"]
    rows = []
    for label in [test, *direction["ood"]]:
        s = sets[label]
        aurocs = (
            [_auroc_cell(direction["detection"][label][k]) for k in SCORE_NAMES]
            if label != test
            else ["(in-distribution)"] + [""] * (len(SCORE_NAMES) - 1)
        )
        rows.append(
            [
                esc(label),
                fmt(s["n"]),
                fmt(s["mean_bytes"], 1),
                fmt(s["truncated"], 2),
                f"<b>{fmt(s['bpc'])}</b>",
                fmt(s["zlib_bpc"]),
                fmt(s["lzma_bpc"]),
                *aurocs,
            ]
        )
    headers = [
        "Set",
        "texts",
        "mean bytes",
        "truncated",
        "model bits/char",
        "zlib bits/char",
        "lzma bits/char",
        *[f"AUROC {v}" for v in SCORE_NAMES.values()],
    ]
    missing = "".join(
        f"<li>{esc(k)}: {esc(v)}</li>" for k, v in direction.get("missing", {}).items()
    )
    model = direction.get("model", {})
    note = (
        f"Model trained on <b>{esc(direction['in_train'])}</b> for {fmt(direction.get('steps'))} "
        f"steps ({esc(model.get('parameters', '?'))} parameters); typicality's reference "
        f"h = {fmt(direction['typical_bpc'])} bits/char (mean over training texts). Bits per "
        "character are bits per byte over each text's bytes and its end marker (padding "
        "excluded), averaged over texts. AUROC: OOD positive, higher score = more anomalous; "
        "below 0.5 the score prefers the other set to the held-out test set."
    )
    rendered = table(headers, rows, numeric=set(range(1, len(headers))), id=f"table-{name}")
    left_out = f"<p>Left out (unreachable): <ul>{missing}</ul></p>" if missing else ""
    return f'<h3>{esc(name)}</h3><p class="note">{note}</p>{rendered}{left_out}'


def figure(run_dir: Path, name: str, direction: Mapping[str, Any]) -> str:
    """The direction's histogram of bits per character, embedded (a placeholder if missing)."""
    relative = direction.get("figure")
    if not relative:
        return ""
    path = run_dir / relative
    caption = (
        f"Bits per character (per byte; the axis says bits/dim) of every set under the {name} "
        "model; dashed lines: the means. Lower = more likely."
    )
    if not path.is_file():
        return f'<div class="missing">missing figure file: {esc(relative)}</div>'
    return embedded_figure(run_dir, relative, caption, f"fig-{name}")


def page(results: Mapping[str, Any], run_dir: Path) -> str:
    """The whole text report as one HTML string."""
    from genood.report.html import CSS

    claims = "".join(
        f'<tr class="{"reproduced" if c["reproduced"] else "not-reproduced"}">'
        f"<td><b>{esc(c['id'])}</b></td><td>{esc(c['claim'])}</td><td>{esc(c['measured'])}</td>"
        f'<td><span class="badge">{esc(c["status"])}</span></td></tr>'
        for c in results["claims"]
    )
    verdict = (
        '<section id="verdicts"><h2>Verdict</h2><table id="verdict-table"><thead><tr>'
        "<th>Claim</th><th>The question, as a claim</th><th>Measured</th><th>Verdict</th>"
        f"</tr></thead><tbody>{claims}</tbody></table></section>"
    )
    scaled = "".join(f"<li>{esc(s)}</li>" for s in results.get("scaled_down", []))
    facts = (
        f"<section id='facts'><h2>Run</h2><p>{esc(results.get('description', ''))}</p>"
        f"<p>Budget {esc(results['budget'])}, {duration(float(results['runtime_s']))} in all."
        f"</p>{f'<ul>{scaled}</ul>' if scaled else ''}</section>"
    )
    directions = "".join(
        direction_table(k, v) + figure(run_dir, k, v) for k, v in results["directions"].items()
    )
    title = f"genood: {results['experiment']} ({results['budget']})"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        "<header><h1>Does a text model know what it doesn't know?</h1>"
        f"<p>{esc(results['experiment'])} &middot; budget {esc(results['budget'])} &middot; "
        f"genood {esc(results.get('genood_version', '?'))} &middot; {esc(results['created'])}"
        f"</p></header>{verdict}{facts}<section id='sets'><h2>Sets and scores</h2>"
        f"{directions}</section><footer>Generated by genood from results.json; regenerate with "
        "<code>genood report RUN_DIR</code>.</footer></main></body></html>\n"
    )


def render_text(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from a text experiment's ``results.json``."""
    run = Path(run_dir)
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    validate_text_results(results)
    out = run / "report.html"
    write_text_atomic(out, page(results, run))
    return out
