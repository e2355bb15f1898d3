"""HTML for ``results.json``'s free-form ``analyses``.

The outputs of :mod:`genood.analysis` (``to_dict()`` of a second-order result, a decomposition,
an ensemble; graying curves) are recognised by their fields and get purpose-made tables: the
second-order predictions beside the measured gap with the sign check, each term's gap, each
member's AUROC. Anything else is shown as a nested key/value table, so nothing is hidden.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genood.report.markup import esc, fmt, table

PREDICTIONS = {
    "paper_formula": "eq. 6 closed form (1x1 convolutions, fixed prior variance)",
    "hessian_variance": "eq. 5 with the model's Hessian at the training mean",
    "hessian_full": "full second-order Taylor expansion, with the mean shift",
}
TERMS = {"log_pz": "distribution term log p(z)", "logdet": "volume term log|det J|"}
# Headings of the analyses genood reproduce writes; any other key is shown as it is.
TITLES = {
    "decomposition": "Where the gap lives: log p(z) and log|det J| (C4)",
    "ensembles": "Ensembles (C3)",
    "cv_glow_training": "CV-Glow during training (C5)",
    "second_order": "Second-order analysis (C6)",
    "graying": "Graying (C7)",
    "asymmetry": "Asymmetry (C2)",
    "hierarchical_bounds": "L^{>k} of the hierarchical VAE, nats (k lowest latents from the prior)",
    "jacobian_penalty": "Teaching the flow where to smear: the Jacobian penalty sweep",
}
SVG_COLORS = ("#0969da", "#cf222e")


def _sign(ok: bool) -> str:
    return '<span class="ok">yes</span>' if ok else '<span class="bad">no</span>'


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def second_order(result: Mapping[str, Any]) -> str:
    """Measured gap, each prediction with its sign check, the per-channel variance sums."""
    measured = float(result["measured_gap"])
    rows = [["measured (model scores)", fmt(measured, 2), ""]]
    for name, value in result["predicted"].items():
        agrees = value != 0 and (value > 0) == (measured > 0)
        headline = " (headline)" if name == result.get("headline") else ""
        rows.append([esc(PREDICTIONS.get(name, name)) + headline, fmt(value, 2), _sign(agrees)])
    out = table(
        ["E_ood[log p] - E_in[log p]", "nats / image", "same sign as measured"],
        rows,
        numeric={1},
        class_="second-order",
    )
    diffs = ", ".join(f"{d:+.3f}" for d in result.get("variance_differences", []))
    notes = [
        f"Sum over pixels of var(OOD) - var(in) per channel ({esc(result.get('scale', ''))}): "
        f"{esc(diffs)}. Measured gap in bits/dim (OOD minus in): "
        f"{fmt(result.get('measured_gap_bpd', float('nan')))}."
    ]
    if result.get("alphas"):
        alphas = ", ".join(f"{a:.3g}" for a in result["alphas"])
        prior = fmt(result.get("prior_var"))
        notes.append(f"alpha_c = prod_k sum_j u_kcj: {esc(alphas)}; prior variance {prior}.")
    notes += [esc(n) for n in result.get("notes", [])]
    return out + "".join(f'<p class="note">{n}</p>' for n in notes)


def decomposition(result: Mapping[str, Any]) -> str:
    """Per-term means and gaps (bits/dim, OOD minus in) and the carrying term."""
    rows = [
        [
            esc(TERMS.get(term, term)),
            fmt(result["in_means"][term]),
            fmt(result["ood_means"][term]),
            fmt(result["gaps"][term]),
        ]
        for term in result["gaps"]
    ]
    rows.append(["<b>total</b>", "", "", f"<b>{fmt(result['total_gap'])}</b>"])
    out = table(
        ["Term (contribution to bits/dim)", "in-distribution", "OOD", "gap"],
        rows,
        numeric={1, 2, 3},
        class_="decomposition",
    )
    carrier = TERMS.get(result["carrier"], result["carrier"])
    note = f"The gap is carried by the {esc(carrier)}."
    if result.get("volume_constant"):
        note += " The volume term is constant (a constant-volume flow)."
    return out + f'<p class="note">{note}</p>'


def ensembles(result: Mapping[str, Any]) -> str:
    """Each member's gap and AUROC, then the mean-log-likelihood and mixture ensembles."""
    rows = [
        [f"model {i + 1}", fmt(gap), fmt(auroc)]
        for i, (gap, auroc) in enumerate(zip(result["member_gaps"], result["member_aurocs"]))
    ]
    rows.append(
        [
            "<b>ensemble: mean log-likelihood</b>",
            fmt(result["ensemble_gap"]),
            fmt(result["ensemble_auroc"]),
        ]
    )
    rows.append(
        ["ensemble: mixture density", fmt(result["mixture_gap"]), fmt(result["mixture_auroc"])]
    )
    return table(
        ["Model", "gap: OOD - in, bits/dim", "AUROC (OOD positive)"],
        rows,
        numeric={1, 2},
        class_="ensembles",
    )


def _is_curve(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(p, list | tuple) and len(p) == 2 and all(map(_is_number, p)) for p in value
        )
    )


def curves(series: Mapping[str, list]) -> str:
    """Graying-style curves ``{label: [(x, y), ...]}`` as one table, a column per label."""
    xs = sorted({float(x) for curve in series.values() for x, _ in curve}, reverse=True)
    lookup = {label: {float(x): y for x, y in curve} for label, curve in series.items()}
    rows = [[fmt(x, 2)] + [fmt(lookup[label].get(x, "")) for label in series] for x in xs]
    return table(["factor", *(esc(k) for k in series)], rows, numeric=set(range(len(series) + 1)))


def training_curve(result: Mapping[str, Any]) -> str:
    """In-distribution and OOD bits/dim over training steps as an inline SVG line chart (the
    paper's "during optimization" plot), with a one-line reading of it."""
    steps = [float(s) for s in result["steps"]]
    series = {
        "in-distribution (held-out)": [float(v) for v in result["in_bpd"]],
        f"OOD ({result.get('ood') or 'tracked set'})": [float(v) for v in result["ood_bpd"]],
    }
    if not steps:
        return '<p class="note">No evaluations were logged during training.</p>'
    width, height, pad = 640, 260, 44
    values = [v for curve in series.values() for v in curve]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1.0
    span = steps[-1] - steps[0]

    def x_of(step: float) -> float:
        return pad + (step - steps[0]) / span * (width - 2 * pad) if span > 0 else width / 2

    def y_of(v: float) -> float:
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    lines, legend = [], []
    for index, (label, curve) in enumerate(series.items()):
        color = SVG_COLORS[index % len(SVG_COLORS)]
        points = " ".join(f"{x_of(s):.1f},{y_of(v):.1f}" for s, v in zip(steps, curve))
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        lines += [
            f'<circle cx="{x_of(s):.1f}" cy="{y_of(v):.1f}" r="3" fill="{color}"/>'
            for s, v in zip(steps, curve)
        ]
        legend.append(
            f'<text x="{pad + 8}" y="{pad - 22 + 14 * index}" fill="{color}" font-size="12">'
            f"{esc(label)}</text>"
        )
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#59636e"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#59636e"/>'
        f'<text x="{width / 2}" y="{height - 10}" font-size="12" text-anchor="middle">'
        f"training step ({fmt(steps[0])} to {fmt(steps[-1])})</text>"
        f'<text x="{pad - 6}" y="{y_of(hi):.1f}" font-size="11" text-anchor="end">'
        f"{hi:.2f}</text>"
        f'<text x="{pad - 6}" y="{y_of(lo):.1f}" font-size="11" text-anchor="end">{lo:.2f}</text>'
        f'<text x="12" y="{height / 2}" font-size="12" transform="rotate(-90 12 {height / 2})" '
        'text-anchor="middle">bits/dim</text>'
    )
    svg = (
        f'<svg class="curve" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="bits/dim during training">{axes}{"".join(lines)}{"".join(legend)}</svg>'
    )
    in_bpd, ood_bpd = series_values = list(series.values())
    preferred = sum(o < i for i, o in zip(*series_values))
    reading = (
        f"The OOD set has the lower bits/dim (is more likely) at {preferred} of {len(steps)} "
        f"evaluations; at step {fmt(steps[-1])}: {in_bpd[-1]:.3f} in-distribution vs "
        f"{ood_bpd[-1]:.3f} OOD bits/dim."
    )
    return f'{svg}<p class="note">{esc(reading)}</p>'


def hierarchical_bounds(result: Mapping[str, Any]) -> str:
    """The ``L^{>k}`` table: one row per ``k``, one column per set, mean +- std in nats."""
    sets = result["sets"]
    rows = [
        [f"L^{{&gt;{k}}}" + (" (ELBO)" if k == 0 else "")]
        + [f"{fmt(s['mean'][i], 1)} &plusmn; {fmt(s['std'][i], 1)}" for s in sets.values()]
        for i, k in enumerate(result["k"])
    ]
    headers = ["bound"] + [f"{esc(label)} (n = {s['n']})" for label, s in sets.items()]
    how = "the conditional prior's mode" if result.get("prior_mode") else "a prior sample"
    note = (
        f"<p class='note'>{esc(result.get('unit', 'nats'))} per image, one posterior draw; the "
        f"k lowest latents from {how}. LLR^{{&gt;k}} = ELBO - L^{{&gt;k}}.</p>"
    )
    return table(headers, rows, numeric=set(range(1, len(headers))), class_="bounds") + note


def jacobian_sweep(result: Mapping[str, Any]) -> str:
    """The sweep's table: one row per lambda (:mod:`genood.experiments.sweep`)."""
    detector = str(result.get("detector", "detector"))
    headers = [
        "lambda",
        "test bits/dim",
        "gap (C1)",
        "distribution part",
        "volume part",
        "likelihood AUROC",
        f"{esc(detector)} AUROC",
        "s / step",
        "R/D test",
        "R/D OOD",
    ]
    keys = [
        "test_bpd",
        "gap",
        "gap_distribution",
        "gap_volume",
        "likelihood_auroc",
        "detector_auroc",
        "seconds_per_step",
        "test_r_per_dim",
        "ood_r_per_dim",
    ]
    rows = [
        [esc(f"{row['lambda']:g}")]
        + [fmt(row.get(k)) if row.get(k) is not None else "-" for k in keys]
        for row in result["rows"]
    ]
    note = (
        f"<p class='note'>Loss: {esc(result.get('penalty', ''))}; {fmt(result.get('steps'))} "
        f"steps each, same seed, {esc(result.get('precision', ''))}, "
        f"{fmt(result.get('jacobian_samples'))} probe(s) per step. Gaps: OOD minus test, mean "
        "bits/dim (negative: the OOD set is more likely); the two parts sum to the gap. R/D: "
        "||df/dx||_F^2 / D after training, mean over images (8 probes each).</p>"
    )
    table_html = table(headers, rows, numeric=set(range(1, len(headers))), id="jacobian-sweep")
    return table_html + note


def generic(value: Any, depth: int = 0) -> str:
    """Any JSON value, recognising the known analysis shapes at every level."""
    if isinstance(value, Mapping):
        if {"steps", "in_bpd", "ood_bpd"} <= value.keys():
            return training_curve(value)
        if {"predicted", "measured_gap"} <= value.keys():
            return second_order(value)
        if {"gaps", "carrier", "in_means", "ood_means"} <= value.keys():
            return decomposition(value)
        if {"member_gaps", "member_aurocs"} <= value.keys():
            return ensembles(value)
        if {"k", "prior_mode", "sets"} <= value.keys():
            return hierarchical_bounds(value)
        if {"lambdas", "rows", "detector"} <= value.keys():
            return jacobian_sweep(value)
        if value and all(_is_curve(v) for v in value.values()):
            return curves(value)
        if depth > 3:
            return f"<pre>{esc(json.dumps(value, indent=1)[:4000])}</pre>"
        rows = [[esc(k), generic(v, depth + 1)] for k, v in value.items()]
        return table(["", ""], rows, class_="kv") if rows else "<p class='note'>(empty)</p>"
    if _is_curve(value):
        return curves({"mean bits/dim": value})
    if isinstance(value, list):
        if all(_is_number(v) or isinstance(v, str) for v in value):
            return esc(", ".join(fmt(v) if _is_number(v) else str(v) for v in value))
        return "<br>".join(generic(v, depth + 1) for v in value)
    return fmt(value)


def analyses_section(analyses: Mapping[str, Any]) -> str:
    """One sub-section per analysis, in ``results.json`` order."""
    if not analyses:
        return ""
    parts = [
        f'<h3 id="analysis-{esc(key)}">{esc(TITLES.get(key, key.replace("_", " ").capitalize()))}</h3>'
        + generic(value)
        for key, value in analyses.items()
    ]
    return f'<section id="analyses"><h2>Analyses</h2>{"".join(parts)}</section>'


__all__ = [
    "TITLES",
    "analyses_section",
    "decomposition",
    "ensembles",
    "generic",
    "hierarchical_bounds",
    "jacobian_sweep",
    "second_order",
    "training_curve",
]
