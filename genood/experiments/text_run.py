"""``genood reproduce text-...``: a text experiment end to end into a run folder.

For each direction (``forward``, then ``reverse`` when the budget runs it):

1. train the byte model on the direction's training corpus with the shared trainer
   (:func:`genood.train.fit`, so resume, the non-finite guard and DDP work as for images) into
   ``models/<direction>/``, resumed when it exists;
2. score the held-out test set, every reachable OOD set (at most ``score_limit`` texts each) and
   ``reference_limit`` training texts (typicality's ``h``) into ``scores/<direction>/*.npz``:
   per text, bits per character, ``log p`` and its terms, its length and the compressors' bits.
   A score file is reused when it was written by the same checkpoint step;
3. the measurements and L1 (:mod:`genood.experiments.text_claims`), and a figure: the
   histograms of every set's bits per character (``figures/bpc-<direction>.png``).

Then ``results.json`` (``"kind": "text"``) and ``report.html`` (:mod:`genood.report.text`).
A set whose source is unreachable is reported and left out; a missing training or test set
stops the run with the data layer's error, which says how to provide it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from genood import config as cfg
from genood.data import load as load_data
from genood.data.errors import DataNotFoundError
from genood.data.text import lengths
from genood.experiments.stages import file_stem, log, provenance
from genood.experiments.text_claims import (
    compressor_bits,
    detection,
    l1_verdict,
    set_summary,
)
from genood.experiments.text_spec import (
    TextBudget,
    TextDirection,
    TextExperiment,
    load_text_experiment,
)
from genood.io import json_default, save_npz_atomic, write_text_atomic


def reproduce_text(
    experiment: str | TextExperiment,
    budget: str = "cpu",
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Run a text experiment at ``budget`` into ``out``; returns the path of ``report.html``."""
    exp = experiment if isinstance(experiment, TextExperiment) else load_text_experiment(experiment)
    spec = exp.budget(budget)
    run_dir = Path(out) if out else Path("runs") / f"{exp.name}-{budget}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log(f"{exp.name} at budget {budget!r} -> {run_dir}")
    directions = {"forward": exp.forward}
    if spec.reverse and exp.reverse is not None:
        directions["reverse"] = exp.reverse
    measured = {
        key: run_direction(key, direction, spec, run_dir, data_dir, device, progress)
        for key, direction in directions.items()
    }
    results: dict[str, Any] = {
        "kind": "text",
        **provenance(exp.name, budget, started),
        "description": exp.description,
        "scaled_down": spec.scaled_down,
        "config": cfg.to_dict(spec.run_config(exp.forward)),
        "directions": measured,
        "claims": [l1_verdict(measured["forward"], measured.get("reverse"))],
    }
    path = run_dir / "results.json"
    write_text_atomic(path, json.dumps(results, indent=2, default=json_default))
    from genood.report.text import render_text

    return render_text(run_dir)


def run_direction(
    key: str,
    direction: TextDirection,
    spec: TextBudget,
    run_dir: Path,
    data_dir: str | Path | None,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Train, score and measure one direction; its entry of ``results["directions"]``."""
    from genood.train import fit, load_run
    from genood.train.precision import resolve_device

    config = spec.run_config(direction)
    if device != "auto":
        config.train.device = device
    config.data.data_dir = str(data_dir or "")
    model_dir = run_dir / "models" / key
    log(f"{key}: {config.model.name} {config.model.hparams} on {direction.in_train}")
    trained = fit(config, model_dir, resume=True, progress=progress, data_dir=data_dir)
    model = load_run(model_dir, device=resolve_device(device)).model
    step = int(trained.get("step", 0))

    reference_label = f"{direction.in_train} (reference)"
    wanted = [(direction.in_test, spec.score_limit), (reference_label, spec.reference_limit)]
    wanted += [(label, spec.score_limit) for label in direction.ood]
    samples: dict[str, dict[str, np.ndarray]] = {}
    missing: dict[str, str] = {}
    for label, limit in wanted:
        source = direction.in_train if label == reference_label else label
        try:
            samples[label] = score_set(
                model, source, limit, run_dir / "scores" / key, label, step, data_dir, progress
            )
        except DataNotFoundError as error:
            if label in (direction.in_test, reference_label):
                raise
            missing[label] = error.summary()
            log(f"{label} not available, left out: {missing[label]}")
    typical = float(np.mean(samples.pop(reference_label)["bpc"]))
    ood = [label for label in direction.ood if label in samples]
    from genood.report import save_figure

    figure = save_figure(
        run_dir,
        f"bpc-{key}",
        "bpd_histograms",
        scores={label: samples[label]["bpc"] for label in [direction.in_test, *ood]},
        title=f"bits per character (byte), model trained on {direction.in_train}",
    )
    return {
        "in_train": direction.in_train,
        "in_test": direction.in_test,
        "ood": ood,
        "missing": missing,
        "figure": figure,
        "steps": step,
        "train_time_s": trained.get("train_time_s"),
        "final_loss_bpc": trained.get("loss_bpd"),
        "typical_bpc": typical,
        "model": model.describe(),
        "sets": {label: set_summary(sample) for label, sample in samples.items()},
        "detection": {
            label: detection(samples[direction.in_test], samples[label], typical, spec.bootstrap)
            for label in ood
        },
    }


def score_set(
    model: Any,
    spec: str,
    limit: int,
    folder: Path,
    label: str,
    step: int,
    data_dir: str | Path | None,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Per-text ``bpc``, ``log_prob``, ``text``, ``end``, ``length``, compressor bits (cached)."""
    from genood.models.scoring import score_images

    path = folder / f"{file_stem(label)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if int(stored["step"]) == step and int(stored["limit"]) == limit:
                return {k: stored[k] for k in stored.files if k not in ("step", "limit")}
    rows = np.asarray(
        load_data(spec, data_dir=data_dir, limit=limit or None, progress=progress).images
    )
    scores = score_images(model, rows, batch_size=256, progress=progress, desc=label)
    symbols = np.minimum(lengths(rows) + 1, rows.shape[-1]).astype(np.float64)
    packed = compressor_bits(rows)
    sample = {
        "bpc": scores["bits_per_dim"],
        "log_prob": scores["log_prob"],
        "text": scores["text"],
        "end": scores["end"],
        "length": lengths(rows).astype(np.float64),
        "truncated": (lengths(rows) >= rows.shape[-1]).astype(np.float64),
        "zlib_bpc": packed["zlib"] / symbols,
        "lzma_bpc": packed["lzma"] / symbols,
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(path, step=np.array(step), limit=np.array(limit), **sample)
    return sample
