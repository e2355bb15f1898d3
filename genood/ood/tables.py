"""Plain-text tables of detection results, for the terminal: OOD is the positive class.

The robustness table labels each OOD set with its group (:func:`genood.data.probe_groups.set_group`:
far-OOD, near-OOD, transformed, or "data set" for a named set) in a row under the header, and its
worst AUROC is over the sets a detector is asked to reject (:func:`~genood.data.probe_groups.in_goal`:
every set but mirrored in-distribution images).
"""

from __future__ import annotations

from typing import Any

from genood.data.probe_groups import in_goal, set_group


def format_robustness(table: dict[str, dict[str, dict[str, Any]]], title: str = "") -> str:
    """Score x OOD set: ``AUROC / share caught at the calibrated threshold`` per cell, each set's
    group under its name, and the worst AUROC over the sets in the goal."""
    sets = list(table)
    scores = list(next(iter(table.values())))
    goal = [s for s in sets if in_goal(s)] or sets
    cells = [
        [name]
        + [
            f"{table[s][name]['auroc']:.3f} / {table[s][name].get('tpr', float('nan')):.0%}"
            for s in sets
        ]
        + [f"{min(table[s][name]['auroc'] for s in goal):.3f}"]
        for name in scores
    ]
    groups = ["group", *(set_group(s) + ("" if in_goal(s) else ", not in goal") for s in sets)]
    footer = "cells: AUROC (OOD positive) / share of the OOD set rejected at the threshold"
    if len(goal) < len(sets):
        footer += "; worst AUROC over the sets in the goal"
    header = ["score", *sets, "worst AUROC"]
    return _text_table(header, cells, title, footer, [*groups, ""])


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


def _text_table(
    header: list[str],
    rows: list[list[str]],
    title: str,
    footer: str,
    subheader: list[str] | None = None,
) -> str:
    """Left-aligned columns under a dashed rule, with an optional title, a second header line
    and a footer line."""
    heads = [header] + ([subheader] if subheader else [])
    widths = [max(len(r[i]) for r in [*heads, *rows]) for i in range(len(header))]
    lines = [title] if title else []
    lines.extend("  ".join(h.ljust(w) for h, w in zip(head, widths)) for head in heads)
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    lines.append(footer)
    return "\n".join(lines)


def format_guard(guard: dict[str, Any]) -> str:
    lines = [f"guarded classifier {guard['classifier']}:"]
    width = max([20, *(len(name) + 1 for name in guard["reports"])])
    lines.append(
        f"{'score':<{width}}{'in rejected':>12}{'acc. accepted':>15}{'acc. unguarded':>16}"
        f"{'OOD rejected':>14}"
    )
    for name, r in guard["reports"].items():
        accepted = "-" if r["accuracy_accepted"] is None else f"{r['accuracy_accepted']:.4f}"
        lines.append(
            f"{name:<{width}}{r['in_rejection_rate']:>12.4f}{accepted:>15}"
            f"{r['accuracy_unguarded']:>16.4f}{r['ood_rejection_rate']:>14.4f}"
        )
    for name, r in guard["reports"].items():
        for spec, rate in r.get("ood_rejection_rates", {}).items():
            lines.append(f"  {name}: rejects {rate:.1%} of {spec}")
    return "\n".join(lines)
