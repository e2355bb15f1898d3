"""A reproduction swept over the Jacobian penalty: does teaching a flow where to smear help?

``genood reproduce smear-fashion-mnist`` (an experiment with a ``[sweep]`` table,
:class:`~genood.experiments.spec.SweepSpec`) trains the budget's model once per lambda in
``jacobian_penalties`` (``train.jacobian_penalty``, :mod:`genood.train.jacobian`), with the same
steps, data order and seed, each as a full reproduction of claims C1 and C4 in its own folder
``lambda-<value>/`` (resumable, with its own ``report.html``). For each lambda it reads back:

* the in-distribution test bits/dim;
* the C1 gap (headline OOD minus in-distribution test, mean bits/dim; negative: the OOD set is
  more likely) and its C4 parts, the distribution term ``log p(z)`` and the volume term
  ``log|det J|`` (they sum to the gap);
* the raw-likelihood AUROC and the AUROC of ``[sweep] detector`` (default the recommended detector, ``dos``),
  under the detection protocol of :mod:`genood.experiments.detection`;
* training seconds per step, and the last logged training estimate of ``R / D``;
* ``R / D = ||df/dx||_F^2 / D`` measured after training on ``sensitivity_images`` images of the
  test set and of the OOD set (8 Hutchinson probes each, bin-midpoint inputs).

The rows go to ``smear.json`` and to ``results.json`` (``analyses["jacobian_penalty"]``) with
the curve ``figures/smear_curve.png``; the verdicts, data-set and detection tables of the page
are those of the smallest lambda (the unpenalised baseline when 0 is swept).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from genood.experiments.spec import Experiment, SweepSpec
from genood.experiments.stages import log, provenance
from genood.io import json_default, write_text_atomic

SENSITIVITY_PROBES = 8
SENSITIVITY_BATCH = 100


def lambda_dir(value: float) -> str:
    """The sub-folder of one lambda: ``lambda-0``, ``lambda-0.001``, ``lambda-1e-05``."""
    return f"lambda-{value:g}"


def reproduce_sweep(
    exp: Experiment,
    budget: str,
    out: str | Path | None,
    data_dir: str | Path | None,
    device: str,
    progress: bool,
    detector: str | None = None,
) -> Path:
    """Run ``exp``'s sweep at ``budget`` and return the path of the sweep's ``report.html``.

    Args:
        exp: an experiment with a ``sweep``.
        budget: the budget whose model, training and scoring every lambda uses.
        out: the run folder (default ``runs/<experiment>-<budget>``).
        data_dir / device / progress: as :func:`genood.experiments.reproduce.reproduce`.
        detector: overrides ``[sweep] detector``.
    """
    from genood.experiments.reproduce import reproduce

    if exp.sweep is None:
        raise ValueError(f"experiment {exp.name!r} has no [sweep] table")
    sweep = exp.sweep if detector is None else replace(exp.sweep, detector=detector)
    spec = exp.budget(budget)
    run_dir = Path(out) if out else Path("runs") / f"{exp.name}-{budget}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rows = []
    for value in sweep.jacobian_penalties:
        sub_spec = replace(
            spec,
            claims=["C1", "C4"],
            detectors=list(dict.fromkeys(["likelihood", sweep.detector])),
            train={
                **spec.train,
                "jacobian_penalty": value,
                "jacobian_samples": sweep.jacobian_samples,
            },
            ensemble=1,
            cv_glow={},
        )
        sub = replace(exp, sweep=None, reverse="", budgets={budget: sub_spec})
        folder = run_dir / lambda_dir(value)
        log(f"jacobian penalty lambda = {value:g} -> {folder}")
        reproduce(sub, budget, folder, data_dir, device, progress, include_reverse=False)
        rows.append(measure_lambda(folder, value, sweep, data_dir))
    table = sweep_table(rows, sweep, spec.train)
    write_text_atomic(
        run_dir / "smear.json", json.dumps(table, indent=2, default=json_default) + "\n"
    )
    return _write_report(exp, budget, run_dir, table, spec.scaled_down, started)


def measure_lambda(
    folder: Path, value: float, sweep: SweepSpec, data_dir: str | Path | None
) -> dict[str, Any]:
    """One row of the curve from one lambda's finished reproduction folder."""
    results = json.loads((folder / "results.json").read_text())
    in_label, ood_label = results["in_distribution"], results["ood"][0]
    decomposition = results["analyses"].get("decomposition", {})
    gaps = decomposition.get("gaps", {})
    detection = results["detection"]
    done = json.loads((folder / "models" / "main" / "done.json").read_text())
    steps = max(int(done["step"]), 1)
    sensitivity = _sensitivity(folder, in_label, ood_label, sweep, data_dir)
    return {
        "lambda": value,
        "test_bpd": results["datasets"][in_label]["bpd_mean"],
        "ood_bpd": results["datasets"][ood_label]["bpd_mean"],
        "gap": decomposition.get("total_gap"),
        "gap_distribution": gaps.get("log_pz"),
        "gap_volume": gaps.get("logdet"),
        "likelihood_auroc": detection.get("likelihood", {}).get("auroc"),
        "detector_auroc": detection.get(sweep.detector, {}).get("auroc"),
        "seconds_per_step": float(done["train_time_s"]) / steps,
        "steps": steps,
        "train_r_per_dim": done.get("jacobian_r_per_dim"),
        "test_r_per_dim": sensitivity[in_label],
        "ood_r_per_dim": sensitivity[ood_label],
    }


def _sensitivity(
    folder: Path, in_label: str, ood_label: str, sweep: SweepSpec, data_dir: str | Path | None
) -> dict[str, float]:
    """Mean ``R / D`` of the trained flow on the test and OOD sets (the first images of each)."""
    import torch

    from genood.data import load as load_data
    from genood.models.jacobian import jacobian_frobenius
    from genood.train import load_run

    loaded = load_run(folder / "models" / "main")
    model = loaded.model
    out: dict[str, float] = {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for label in (in_label, ood_label):
            spec = _spec_of(folder, label)
            images = load_data(spec, data_dir=data_dir, limit=sweep.sensitivity_images)
            arrays = loaded.preprocessing.apply(np.asarray(images.images))
            values = []
            for start in range(0, len(arrays), SENSITIVITY_BATCH):
                batch = torch.from_numpy(arrays[start : start + SENSITIVITY_BATCH])
                x = model.preprocess(batch, dequantize=False)
                values.append(jacobian_frobenius(model, x, SENSITIVITY_PROBES).cpu().numpy())
            out[label] = float(np.concatenate(values).mean())
    return out


def _spec_of(folder: Path, label: str) -> str:
    """The loadable spec of a data-set label (holdout labels map to the run's npz files)."""
    if label.endswith(":held-out"):
        return f"npz:{(folder / 'data' / 'in-test.npz').resolve()}"
    return label


def sweep_table(
    rows: list[dict[str, Any]], sweep: SweepSpec, train: dict[str, Any]
) -> dict[str, Any]:
    """The JSON table of the curve, with what it was measured under."""
    return {
        "lambdas": [row["lambda"] for row in rows],
        "detector": sweep.detector,
        "jacobian_samples": sweep.jacobian_samples,
        "penalty": "bpd + lambda * ||df/dx||_F^2 / D (Hutchinson estimate)",
        "steps": train.get("steps"),
        "precision": train.get("precision", "fp32"),
        "rows": rows,
    }


def _write_report(
    exp: Experiment,
    budget: str,
    run_dir: Path,
    table: dict[str, Any],
    scaled_down: list[str],
    started: float,
) -> Path:
    """``results.json`` (the baseline's tables plus the sweep) and ``report.html``."""
    from genood.report import render
    from genood.report.store import save_figure

    rows = table["rows"]
    baseline = lambda_dir(rows[0]["lambda"])
    results = json.loads((run_dir / baseline / "results.json").read_text())
    figure = save_figure(
        run_dir,
        "smear_curve",
        "smear_curve",
        lambdas=[r["lambda"] for r in rows],
        test_bpd=[r["test_bpd"] for r in rows],
        gaps={
            "gap (C1)": [r["gap"] for r in rows],
            "distribution part log p(z)": [r["gap_distribution"] for r in rows],
            "volume part log|det J|": [r["gap_volume"] for r in rows],
        },
        aurocs={
            "raw likelihood": [r["likelihood_auroc"] for r in rows],
            table["detector"]: [r["detector_auroc"] for r in rows],
        },
        ood_label=results["ood"][0],
    )
    results.update(
        {
            **provenance(exp.name, budget, started),
            "scaled_down": [
                *scaled_down,
                f"verdicts, data sets and detection above are those of lambda = "
                f"{rows[0]['lambda']:g}; every lambda has its own report in lambda-*/",
            ],
            "figures": {"smear_curve": figure},
            "figure_captions": {
                "smear_curve": (
                    "The Jacobian penalty sweep: test bits/dim, the C1 gap with its C4 parts, "
                    "and the AUROCs, against lambda (same steps and seed for every lambda)."
                )
            },
            "analyses": {"jacobian_penalty": table},
        }
    )
    path = run_dir / "results.json"
    write_text_atomic(path, json.dumps(results, indent=2, default=json_default))
    return render(run_dir)


__all__ = ["lambda_dir", "measure_lambda", "reproduce_sweep", "sweep_table"]
