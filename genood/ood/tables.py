"""Plain-text tables of detection results, for the terminal: OOD is the positive class."""

from __future__ import annotations

from typing import Any


def format_robustness(table: dict[str, dict[str, dict[str, Any]]], title: str = "") -> str:
    """Score x OOD set: ``AUROC / share caught at the calibrated threshold`` per cell."""
    sets = list(table)
    scores = list(next(iter(table.values())))
    cells = [
        [name]
        + [
            f"{table[s][name]['auroc']:.3f} / {table[s][name].get('tpr', float('nan')):.0%}"
            for s in sets
        ]
        + [f"{min(table[s][name]['auroc'] for s in sets):.3f}"]
        for name in scores
    ]
    footer = "cells: AUROC (OOD positive) / share of the OOD set rejected at the threshold"
    return _text_table(["score", *sets, "worst AUROC"], cells, title, footer)


def format_table(results: dict[str, dict[str, Any]], title: str = "") -> str:
    """A plain-text table, score x metric, with the positive-class convention stated."""
    header = [
        "score",
        "AUROC",
        "AUPR-in",
        "AUPR-out",
        "FPR@95",
        "threshold",
        "FPR",
        "TPR",
        "det.acc",
    ]
    rows = []
    for name, m in results.items():
        auroc = f"{m['auroc']:.4f}"
        if "auroc_ci" in m:
            auroc += f" [{m['auroc_ci'][0]:.4f}, {m['auroc_ci'][1]:.4f}]"
        rows.append(
            [
                name,
                auroc,
                f"{m['aupr_in']:.4f}",
                f"{m['aupr_out']:.4f}",
                f"{m['fpr95']:.4f}",
                f"{m.get('threshold', float('nan')):.4g}",
                f"{m.get('fpr', float('nan')):.4f}",
                f"{m.get('tpr', float('nan')):.4f}",
                f"{m.get('detection_accuracy', float('nan')):.4f}",
            ]
        )
    footer = (
        "OOD is the positive class (AUROC, AUPR-out, FPR@95); scores: higher = more anomalous; "
        "FPR/TPR/det.acc at the threshold calibrated on held-out in-distribution images"
    )
    return _text_table(header, rows, title, footer)


def _text_table(header: list[str], rows: list[list[str]], title: str, footer: str) -> str:
    """Left-aligned columns under a dashed rule, with an optional title and a footer line."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    lines.append(footer)
    return "\n".join(lines)


def format_guard(guard: dict[str, Any]) -> str:
    lines = [f"guarded classifier {guard['classifier']}:"]
    lines.append(
        f"{'score':<20}{'in rejected':>12}{'acc. accepted':>15}{'acc. unguarded':>16}"
        f"{'OOD rejected':>14}"
    )
    for name, r in guard["reports"].items():
        accepted = "-" if r["accuracy_accepted"] is None else f"{r['accuracy_accepted']:.4f}"
        lines.append(
            f"{name:<20}{r['in_rejection_rate']:>12.4f}{accepted:>15}"
            f"{r['accuracy_unguarded']:>16.4f}{r['ood_rejection_rate']:>14.4f}"
        )
    for name, r in guard["reports"].items():
        for spec, rate in r.get("ood_rejection_rates", {}).items():
            lines.append(f"  {name}: rejects {rate:.1%} of {spec}")
    return "\n".join(lines)
