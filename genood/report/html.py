"""``report.html``: one self-contained page from ``results.json`` and the run's figures.

The page leads with the verdict table (each claim, what was measured, the verdict), then the
run's facts, the data-set table, the detection table and the analyses, then every figure with a
caption. Figures are embedded as base64 data URIs and styles are inline, so the file opens
offline and can be mailed around; the PNGs stay beside it in ``figures/``.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from genood.io import write_text_atomic
from genood.report.analyses import analyses_section
from genood.report.markup import duration, esc, fmt, table
from genood.report.schema import validate_results
from genood.report.store import DATA_DIR

PAPER = (
    "E. Nalisnick, A. Matsukawa, Y. W. Teh, D. Gorur, B. Lakshminarayanan. Do Deep Generative "
    "Models Know What They Don't Know? ICLR 2019 (arXiv:1810.09136)."
)

# Captions for the figure keys the reproduction pipeline uses; others fall back to their kind.
CAPTIONS = {
    "bpd_histograms": "Bits/dim of the in-distribution train and test sets and the OOD sets "
    "(the paper's Figure 1). Lower bits/dim is higher likelihood; the dashed lines are means.",
    "decomposition": "The change of variables split into its two terms, each as its "
    "contribution to bits/dim: the distribution term log p(z) and the volume term log|det J|.",
    "ensembles": "An ensemble of independently seeded models: the ensemble's mean "
    "log-likelihood per sample, and each member's gap against the ensemble's.",
    "cv_glow_training": "A constant-volume Glow's bits/dim on the in-distribution test set and "
    "the OOD set during training (the paper's 'during optimization' plot).",
    "second_order": "The second-order analysis: per-channel sums of variance differences (OOD "
    "minus in-distribution) and the predicted vs the measured log-likelihood gap.",
    "graying": "Mean bits/dim as the images are grayed toward their mean; the paper predicts "
    "the likelihood rises (bits/dim fall) as the variance shrinks.",
    "asymmetry": "The forward experiment beside the reverse one (the model trained on the "
    "other data set).",
    "samples": "Samples from the model.",
}
KIND_CAPTIONS = {
    "bpd_histograms": CAPTIONS["bpd_histograms"],
    "decomposition_histograms": CAPTIONS["decomposition"],
    "ensemble_plot": CAPTIONS["ensembles"],
    "training_curves": "Bits/dim of tracked data sets during training.",
    "second_order_plot": CAPTIONS["second_order"],
    "graying_plot": CAPTIONS["graying"],
    "asymmetry_histograms": CAPTIONS["asymmetry"],
    "sample_grid": CAPTIONS["samples"],
}
MIME = {".png": "image/png", ".svg": "image/svg+xml"}

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { overflow-wrap: anywhere; }
.table-wrap { max-width: 100%; overflow-x: auto; }
#probe-table, #guard-table { font-size: 13px; }
/* the probe and guard tables (a dozen sets) may use the window's width, beyond the text */
.bleed { --wide: min(1400px, calc(100vw - 64px)); width: var(--wide);
  margin-left: calc((100% - var(--wide)) / 2); }
#probe-table th, #probe-table td, #guard-table th, #guard-table td { padding: 6px 6px; }
#probe-table td.num, #probe-table th.num, #guard-table th.num { white-space: normal; }
#probe-table th, #guard-table th { overflow-wrap: normal; }
.share, .ci { color: var(--muted); font-size: 12px; }
#probe-table td .share, #probe-table td .ci, .word { white-space: nowrap; }
svg.curve { width: 100%; max-width: 640px; height: auto; display: block; }
tbody tr:hover { background: #fafbfc; }
.summary { font-size: 16px; margin: 6px 0 10px; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 13px;
  font-weight: 600; white-space: nowrap; }
.reproduced .badge { background: #dafbe1; color: #116329; }
.not-reproduced .badge { background: #ffebe9; color: #a40e26; }
.not-run .badge { background: #eaeef2; color: #59636e; font-weight: 500; font-style: italic; }
.not-run td { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 14px; margin-top: 6px; }
figcaption .file { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.missing { padding: 24px; border: 2px dashed #cf222e; color: #a40e26; border-radius: 6px; }
.ok { color: #116329; font-weight: 600; }
.bad { color: #a40e26; font-weight: 600; }
pre { background: var(--soft); padding: 10px; border-radius: 6px; overflow-x: auto;
  font-size: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
"""


# ----------------------------------------------------------------------------- sections
def verdicts(claims: list[Mapping[str, Any]], expect_phenomenon: bool = True) -> str:
    """The verdict table; "not run at this budget" is grey and never counted as reproduced.

    For a direction in which the paper reports no phenomenon, the table says so: its claims
    are judged against the outcome the paper reports for that direction.
    """
    counts = {s: sum(c["status"] == s for c in claims) for s in ("reproduced", "not reproduced")}
    not_run = len(claims) - sum(counts.values())
    ran = len(claims) - not_run
    summary = f"{counts['reproduced']} of {ran} claims tested reproduced"
    if not_run:
        summary += f"; {not_run} not run at this budget"
    rows = []
    for claim in claims:
        css = {"reproduced": "reproduced", "not reproduced": "not-reproduced"}.get(
            claim["status"], "not-run"
        )
        rows.append(
            f'<tr class="{css}" data-status="{esc(claim["status"])}">'
            f"<td><b>{esc(claim['id'])}</b></td>"
            f"<td>{esc(claim['claim'])}</td><td>{esc(claim['measured'])}</td>"
            f'<td><span class="badge">{esc(claim["status"])}</span></td></tr>'
        )
    rendered = (
        '<table id="verdict-table"><thead><tr><th>Claim</th><th>What the paper says</th>'
        f"<th>Measured</th><th>Verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    head = f'<h2>Verdicts</h2><p class="summary">{esc(summary)}</p>'
    if not expect_phenomenon:
        head += (
            '<p id="direction">The paper reports <b>no</b> phenomenon in this direction (the '
            "asymmetry of its section 4): each claim is judged against the outcome the paper "
            "reports for this direction.</p>"
        )
    return f'<section id="verdicts">{head}{rendered}</section>'


def run_facts(results: Mapping[str, Any]) -> str:
    """D, data sets, budget, what was scaled down, run time."""
    scaled = results["scaled_down"]
    scaled_html = (
        "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in scaled) + "</ul>" if scaled else "nothing"
    )
    facts = [
        ("Experiment", esc(results["experiment"])),
        ("Budget", esc(results["budget"])),
        ("D (sub-pixels the model sees, padding counted)", fmt(results["num_dims"])),
        ("In-distribution", esc(results["in_distribution"])),
        ("OOD", esc(", ".join(results["ood"]))),
        ("Scaled down at this budget", scaled_html),
        ("Run time", esc(duration(results["runtime_s"]))),
        ("Created", esc(results["created"])),
        ("genood", esc(results["genood_version"])),
    ]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return f'<section id="run"><h2>Run</h2><dl class="facts">{items}</dl></section>'


def datasets_table(results: Mapping[str, Any]) -> str:
    """Mean +- std bits/dim per data set, with the decomposition columns when present."""
    datasets, in_label, ood = results["datasets"], results["in_distribution"], results["ood"]
    terms = any("log_pz_bpd_mean" in r for r in datasets.values())
    headers = ["Data set", "Role", "n", "bits/dim mean", "std"]
    if terms:
        headers += ["log p(z) term", "log-det term"]
    rows = []
    for label, row in datasets.items():
        role = "in-distribution test" if label == in_label else "OOD" if label in ood else ""
        if not role and label.endswith(":train"):
            role = "in-distribution train"
        cells = [esc(label), role, fmt(row["n"]), fmt(row["bpd_mean"]), fmt(row["bpd_std"])]
        if terms:
            cells += [fmt(row.get("log_pz_bpd_mean", "")), fmt(row.get("logdet_bpd_mean", ""))]
        rows.append(cells)
    note = f"Bits/dim with D = {fmt(results['num_dims'])} (padding counted); lower = more likely."
    if terms:
        note += " Term columns are each term's contribution -term / (D log 2); with 8 bits "
        note += "for the 8-bit scale they add up to the bits/dim."
    rendered = table(headers, rows, numeric={2, 3, 4, 5, 6}, id="datasets-table")
    note_html = f'<p class="note">{esc(note)}</p>'
    return f'<section id="datasets"><h2>Data sets</h2>{rendered}{note_html}</section>'


def detection_table(results: Mapping[str, Any]) -> str:
    """AUROC (with interval), AUPR-in, AUPR-out and FPR at 95 % TPR per score."""
    detection = results["detection"]
    if not detection:
        return ""
    rows = []
    for score, row in detection.items():
        auroc = fmt(row["auroc"])
        if "auroc_ci" in row:
            auroc += f" [{fmt(row['auroc_ci'][0])}, {fmt(row['auroc_ci'][1])}]"
        rows.append(
            [
                _score_name(score),
                auroc,
                fmt(row["aupr_in"]),
                fmt(row["aupr_out"]),
                fmt(row["fpr95"]),
            ]
        )
    headers = ["Score", "AUROC", "AUPR-in", "AUPR-out", "FPR at 95 % TPR"]
    note = (
        f"OOD is the positive class ({esc(', '.join(results['ood']))} against "
        f"{esc(results['in_distribution'])}); AUROC below 0.5 means the score ranks the OOD "
        "set as more normal than the in-distribution test set."
    )
    rendered = table(headers, rows, numeric={1, 2, 3, 4}, id="detection-table")
    return (
        f'<section id="detection"><h2>Detection</h2><p class="note">{note}</p>{rendered}'
        f"{probe_table(detection)}{guard_table(results.get('guard'), detection)}</section>"
    )


def probe_table(detection: Mapping[str, Any]) -> str:
    """Score x probe set: AUROC and the share rejected at the calibrated threshold, the sets
    under their group and protocol role, and the worst AUROC over the sets in the goal."""
    about = _probe_sets(detection)
    if not about:
        return ""
    sets = list(about)
    rows = []
    for score, row in detection.items():
        found = row.get("probes", {})
        cells = [_probe_cell(found[s]) if s in found else "" for s in sets]
        counted = [found[s]["auroc"] for s in sets if s in found and found[s].get("in_goal", True)]
        worst = min(counted, default=float("nan"))
        rows.append([_score_name(score), *cells, fmt(min(worst, row["auroc"]))])
    # "probe:inverted:fashion-mnist:test" -> "inverted: fashion-mnist:test", breakable
    names = [_probe_header(s, about[s]) for s in sets]
    headers = ["Score", *names, 'Worst <span class="word">AUROC</span>']
    target = next((row["target_fpr"] for row in detection.values() if "target_fpr" in row), None)
    at = f" ({float(target):.0%} FPR)" if target is not None else ""
    note = (
        "The same detectors, fitted and calibrated on in-distribution data only, against OOD "
        "sets nobody tuned them on (genood.data.probes), under their group and their role in the "
        "declared protocol (docs/detection.md): validation sets may choose a detector, held-out "
        "sets only report. Cells: AUROC; under it its 95% bootstrap interval (where the table has "
        "one); then the share of the set rejected at the calibrated threshold"
        f"{at} &middot; the in-distribution FPR at 95% TPR. Worst AUROC: over the main pair and the "
        "probes in the goal (a horizontal flip of clothing is still clothing, so hflip is "
        "reported only)."
    )
    return _wide_table("OOD sets nobody tuned on", note, headers, rows, "probe-table")


def _probe_sets(detection: Mapping[str, Any]) -> Mapping[str, Any]:
    """The probe sets of the detection table, each with its group, role and goal flag (the
    first row that has probes; every row has the same), or ``{}``."""
    return next((row["probes"] for row in detection.values() if row.get("probes")), {})


def _wide_table(
    title: str, note: str, headers: list[str], rows: list[list[str]], table_id: str
) -> str:
    """A titled table of numbers (every column but the first) that may use the window's width
    beyond the text column (``.bleed``): the probe and guard tables, a dozen sets wide."""
    rendered = table(headers, rows, numeric=set(range(1, len(headers))), id=table_id)
    return f'<h3>{title}</h3><p class="note">{note}</p><div class="bleed">{rendered}</div>'


def _probe_cell(found: Mapping[str, Any]) -> str:
    """AUROC; under it its interval; then the share rejected and FPR@95 (each where present)."""
    ci = found.get("auroc_ci")
    interval = f'<br><span class="ci">{fmt(ci[0])}&ndash;{fmt(ci[1])}</span>' if ci else ""
    fpr = f" &middot; {float(found['fpr95']):.3f}" if "fpr95" in found else ""
    return f'{fmt(found["auroc"])}{interval}<br><span class="share">{found["tpr"]:.0%}{fpr}</span>'


def guard_table(guard: Mapping[str, Any] | None, detection: Mapping[str, Any]) -> str:
    """With ``genood reproduce --guard``: each classifier-reading score as a gate in front of
    the classifier (:func:`genood.experiments.detect.guard_figures`): in-distribution images
    turned away, accuracy on those accepted against the classifier alone, and the share of
    each OOD and probe set turned away."""
    if not guard or not guard.get("reports"):
        return ""
    reports = guard["reports"]
    first = next(iter(reports.values()))
    sets = list(first.get("ood_rejection_rates", {}))
    target = float(first["target_fpr"])
    about = _probe_sets(detection)
    rows = []
    for score, r in reports.items():
        accepted = r["accuracy_accepted"]
        rows.append(
            [
                _score_name(score),
                f"{r['in_rejection_rate']:.1%}",
                "-" if accepted is None else fmt(accepted),
                fmt(r["accuracy_unguarded"]),
                *(f"{r['ood_rejection_rates'][s]:.1%}" for s in sets),
            ]
        )
    names = [_probe_header(s, about[s]) if s in about else _breakable(s) for s in sets]
    headers = [
        "Score",
        '<span class="word">In-distribution</span> rejected',
        '<span class="word">Accuracy</span> accepted',
        '<span class="word">Accuracy</span> alone',
        *names,
    ]
    note = (
        f"The classifier in {esc(guard['classifier'])} behind each score that reads it, at the "
        f"threshold calibrated above ({target:.0%} FPR), on "
        f"{esc(guard.get('in', 'the evaluation part'))}: "
        "the share of in-distribution images turned away, the classifier's accuracy on those "
        "let through and on all of them (no gate), and the share of each OOD set turned away."
    )
    return _wide_table("The gate in front of the classifier", note, headers, rows, "guard-table")


def _score_name(score: str) -> str:
    """A score's name, the recommended detector (``genood.ood.RECOMMENDED``) and the
    recommended gate with a classifier (``RECOMMENDED_GATE``) marked."""
    from genood.ood.registry import RECOMMENDED, RECOMMENDED_GATE

    name = esc(score).replace("+", "+<wbr>")  # a long combination may break after each +
    if score == RECOMMENDED:
        return f"<b>{name}</b> (recommended)"
    if score == RECOMMENDED_GATE:
        return f"<b>{name}</b> (recommended gate, with a classifier)"
    return name


def _probe_header(label: str, about: Mapping[str, Any]) -> str:
    name = _breakable(label.removeprefix("probe:").replace(":", ": ", 1))
    tags = [str(about[k]) for k in ("group", "role") if about.get(k)]
    if not about.get("in_goal", True):
        tags = [t for t in tags if t != "outside the goal"] + ["outside the goal"]
    # whole words only: a narrow column breaks "transformed, held-out" between words
    words = " ".join(f'<span class="word">{esc(w)}</span>' for w in ", ".join(tags).split())
    return name + (f'<br><span class="share">{words}</span>' if tags else "")


def _breakable(text: str) -> str:
    """``text`` escaped, with a break opportunity after each ``:``, ``-`` and ``x`` between
    digits, so that a narrow column breaks a set name like ``regular:1x28x28`` at its joints."""
    out = esc(text).replace(":", ":<wbr>").replace("-", "-<wbr>")
    return re.sub(r"(?<=\d)x(?=\d)", "x<wbr>", out)


def _samples_caption(inputs: Any) -> str:
    """The sample grid's caption, with the sampling temperature the figure data recorded."""
    temperature = None
    if isinstance(inputs, Mapping) and "__dict__" in inputs:  # how store.py packs a dict
        temperature = dict(inputs["__dict__"]).get("temperature")
    if temperature is None:
        return CAPTIONS["samples"] + " The sampling temperature was not recorded."
    return f"{CAPTIONS['samples']} Sampling temperature T = {temperature:g} (the prior's std x T)."


def _caption(results: Mapping[str, Any], run_dir: Path, key: str) -> str:
    custom = results.get("figure_captions", {})
    if key in custom:
        return custom[key]
    data = run_dir / DATA_DIR / f"{key}.npz"
    meta: dict[str, Any] = {}
    if data.exists():
        with np.load(data, allow_pickle=False) as stored:
            meta = json.loads(str(stored["__meta__"]))
    if meta.get("kind") == "sample_grid":
        return _samples_caption(meta.get("inputs", {}))
    if key in CAPTIONS:
        return CAPTIONS[key]
    if meta.get("kind") in KIND_CAPTIONS:
        return KIND_CAPTIONS[meta["kind"]]
    return key.replace("_", " ").replace("-", " ").capitalize() + "."


def figures_section(results: Mapping[str, Any], run_dir: Path) -> str:
    """Every figure of ``results["figures"]`` embedded as a data URI, with its caption.

    A missing file becomes a visible placeholder (and a warning) rather than a broken report.
    """
    parts = []
    for number, (key, relative) in enumerate(results["figures"].items(), start=1):
        path = run_dir / relative
        caption = esc(_caption(results, run_dir, key))
        label = f'<b>Figure {number}.</b> {caption} <span class="file">{esc(relative)}</span>'
        if path.is_file():
            mime = MIME.get(path.suffix.lower(), "image/png")
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            body = f'<img src="data:{mime};base64,{data}" alt="{caption}">'
        else:
            warnings.warn(f"figure {key!r}: {path} does not exist", stacklevel=2)
            body = f'<div class="missing">missing figure file: {esc(relative)}</div>'
        parts.append(f'<figure id="fig-{esc(key)}">{body}<figcaption>{label}</figcaption></figure>')
    if not parts:
        return ""
    return f'<section id="figures"><h2>Figures</h2>{"".join(parts)}</section>'


def page(results: Mapping[str, Any], run_dir: Path) -> str:
    """The whole report as one HTML string."""
    title = f"genood: {results['experiment']} ({results['budget']})"
    subtitle = (
        f"{esc(results['experiment'])} &middot; budget {esc(results['budget'])} &middot; "
        f"D = {fmt(results['num_dims'])} &middot; genood {esc(results['genood_version'])} "
        f"&middot; {esc(results['created'])}"
    )
    sections = [
        verdicts(results["claims"], bool(results.get("expect_phenomenon", True))),
        run_facts(results),
        datasets_table(results),
        detection_table(results),
        analyses_section(results["analyses"]),
        figures_section(results, run_dir),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        "<header><h1>Do deep generative models know what they don't know?</h1>"
        f"<p>{subtitle}</p></header>{''.join(sections)}"
        f"<footer>Reproducing {esc(PAPER)} Generated by genood from results.json; "
        "regenerate with <code>genood report RUN_DIR</code>.</footer>"
        "</main></body></html>\n"
    )


def render(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from ``run_dir/results.json`` and return its path.

    The results are validated first (:func:`~genood.report.schema.validate_results`); figures
    named in ``results["figures"]`` are read from the run folder and embedded.
    """
    run = Path(run_dir)
    source = run / "results.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist; is {run} a genood run folder?")
    try:
        results = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON: {error}") from error
    if isinstance(results, dict) and results.get("kind") == "text":  # a text experiment
        from genood.report.text import render_text

        return render_text(run)
    validate_results(results)
    out = run / "report.html"
    write_text_atomic(out, page(results, run))
    return out


__all__ = ["CAPTIONS", "page", "render"]
