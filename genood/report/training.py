"""``report.html`` for a plain training run (``genood train``), which has no ``results.json``.

The page shows what the run folder holds: the model and its config, how far it trained
(``done.json`` or the last ``metrics.jsonl`` record), the training curve (held-out and tracked
bits/dim at each evaluation, or the training loss when nothing was evaluated), histograms of the
per-sample bits/dim of every set scored into ``RUN/scores/`` (``genood score``), and the latest
sample grid of ``RUN/samples/``. It reads the files directly and imports nothing of training.

:func:`is_training_run` says whether a folder is one; :func:`render_training` writes the page.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from genood.analysis.training import eval_rows
from genood.io import write_text_atomic
from genood.report.html import CSS
from genood.report.markup import duration, embedded_figure, esc, fmt, table
from genood.report.store import save_figure

# What genood train draws its sample grids at (genood/train/monitor.py's default).
TRAINING_SAMPLE_TEMPERATURE = 1.0


def is_training_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a ``genood train`` run folder (``config.toml`` and metrics)."""
    run = Path(run_dir)
    return (run / "config.toml").is_file() and (run / "metrics.jsonl").is_file()


def _records(run: Path) -> list[dict[str, Any]]:
    records = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _curve_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plain rows for the training-curve figure: the training loss at each logged step, and
    the held-out and tracked sets' bits/dim at each evaluation."""
    losses = [
        {"step": r["step"], "loss_bpd": r["loss_bpd"]}
        for r in records
        if r.get("event") == "train" and "loss_bpd" in r
    ]
    return losses + eval_rows(records)


def _scores(run: Path) -> tuple[dict[str, np.ndarray], int | None]:
    """``{spec: bits/dim}`` of every file in ``RUN/scores``, and ``D``."""
    scores: dict[str, np.ndarray] = {}
    num_dims = None
    for path in sorted((run / "scores").glob("*.npz")):
        with np.load(path, allow_pickle=False) as stored:
            if "bits_per_dim" not in stored.files:
                continue
            label = str(stored["spec"]) if "spec" in stored.files else path.stem
            scores[label] = np.asarray(stored["bits_per_dim"], dtype=np.float64)
            if "num_dims" in stored.files:
                num_dims = int(stored["num_dims"])
    return scores, num_dims


def training_page(run_dir: str | Path) -> str:
    """The training run's report as one HTML string (figures drawn into ``RUN/figures``)."""
    run = Path(run_dir)
    config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    records = _records(run)
    done_path = run / "done.json"
    done = json.loads(done_path.read_text()) if done_path.is_file() else {}
    last = done or next((r for r in reversed(records) if "step" in r), {})
    model = config.get("model", {})
    data = config.get("data", {})
    facts = [
        ("Model", esc(str(model.get("name", "?")))),
        (
            "Hyper-parameters",
            esc(", ".join(f"{k}={v}" for k, v in model.get("hparams", {}).items())),
        ),
        ("Training data", esc(str(data.get("train", "?")))),
        ("Steps", fmt(last.get("step", 0))),
        ("Finished", "yes" if done.get("finished") else "no (resume with genood train --out RUN)"),
    ]
    if "train_time_s" in last:
        facts.append(("Training time", esc(duration(float(last["train_time_s"])))))
    for key, label in (("loss_bpd", "Last training loss"), ("eval_bpd", "Held-out bits/dim")):
        if key in last:
            facts.append((label, fmt(last[key])))
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    sections = [f'<section id="run"><h2>Run</h2><dl class="facts">{items}</dl></section>']

    figures = []
    rows = _curve_rows(records)
    if rows:
        relative = save_figure(
            run,
            "training_curve",
            "training_curves",
            rows=rows,
            labels={"loss_bpd": "training loss"},
        )
        caption = "Bits/dim during training: the training loss, and held-out (and tracked) sets."
        figures.append(embedded_figure(run, relative, caption))
    scores, num_dims = _scores(run)
    if scores:
        relative = save_figure(
            run, "bpd_histograms", "bpd_histograms", scores=scores, num_dims=num_dims
        )
        figures.append(
            embedded_figure(run, relative, "Bits/dim of every set scored with genood score.")
        )
        rows_html = [
            [esc(label), fmt(len(values)), fmt(float(values.mean())), fmt(float(values.std()))]
            for label, values in scores.items()
        ]
        sections.append(
            '<section id="scores"><h2>Scored sets</h2>'
            + table(["Data set", "n", "bits/dim mean", "std"], rows_html, numeric={1, 2, 3})
            + "</section>"
        )
    else:
        sections.append(
            '<section id="scores"><h2>Scored sets</h2><p class="note">Nothing scored yet: '
            "genood score --run RUN --dataset SPEC adds a set.</p></section>"
        )
    grids = sorted((run / "samples").glob("step-*.png"))
    if grids:
        caption = (
            f"Samples at {grids[-1].stem.replace('-', ' ')} (sampling temperature "
            f"T = {TRAINING_SAMPLE_TEMPERATURE:g}, as genood train draws them)."
        )
        figures.append(embedded_figure(run, str(grids[-1].relative_to(run)), caption))
    if figures:
        sections.append(f'<section id="figures"><h2>Figures</h2>{"".join(figures)}</section>')
    title = f"genood: training run {run.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{esc(title)}</h1><p>{esc(str(run))}</p></header>{''.join(sections)}"
        "<footer>Generated by genood from the run folder; regenerate with "
        "<code>genood report RUN</code>.</footer></main></body></html>\n"
    )


def render_training(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for a training run and return its path."""
    run = Path(run_dir)
    if not is_training_run(run):
        raise FileNotFoundError(
            f"{run} is not a training run (it needs config.toml and metrics.jsonl): train one "
            f"with genood train --config CONFIG --out {run}"
        )
    out = run / "report.html"
    write_text_atomic(out, training_page(run))
    return out


__all__ = ["is_training_run", "render_training", "training_page"]
