"""A synthetic run folder: results.json plus real figures drawn from random arrays."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genood.analysis import decompose, ensemble_analysis
from genood.report.store import save_figure

NUM_DIMS = 64
PROBE_SETS = (
    "probe:noise",
    "probe:constant",
    "probe:letters",
    "probe:uci-digits",
    "probe:inverted:fashion-mnist:test",
    "probe:inverted:mnist-10k",
)


def minimal_results() -> dict[str, Any]:
    """A valid results.json object with every required field and no figures."""
    return {
        "experiment": "fashion-mnist-vs-mnist",
        "budget": "quick",
        "created": "2025-01-02T03:04:05+0000",
        "genood_version": "0.1.0",
        "runtime_s": 754.2,
        "num_dims": NUM_DIMS,
        "in_distribution": "fashion-mnist:test",
        "ood": ["mnist-10k:test"],
        "datasets": {
            "fashion-mnist:train": {"bpd_mean": 2.91, "bpd_std": 0.5, "n": 2000},
            "fashion-mnist:test": {"bpd_mean": 2.95, "bpd_std": 0.52, "n": 2000},
            "mnist-10k:test": {"bpd_mean": 1.85, "bpd_std": 0.3, "n": 2000},
        },
        "detection": {
            "likelihood": {
                "auroc": 0.12,
                "aupr_in": 0.6,
                "aupr_out": 0.32,
                "fpr95": 0.99,
                "auroc_ci": [0.1, 0.14],
            },
            "typicality": {"auroc": 0.83, "aupr_in": 0.8, "aupr_out": 0.85, "fpr95": 0.5},
        },
        "claims": [
            {
                "id": "C1",
                "claim": "OOD gets higher likelihood <than> the test set & more",
                "measured": "1.850 vs 2.950 bits/dim",
                "reproduced": True,
                "status": "reproduced",
            },
            {
                "id": "C2",
                "claim": "Asymmetry",
                "measured": "not run at this budget",
                "reproduced": False,
                "status": "not run at this budget",
            },
            {
                "id": "C7",
                "claim": "Graying raises the likelihood",
                "measured": "1: 2.95, 0: 3.10",
                "reproduced": False,
                "status": "not reproduced",
            },
        ],
        "figures": {},
        "scaled_down": ["Glow with 2 levels x 2 steps (paper: 3 x 32)"],
        "analyses": {},
    }


@pytest.fixture
def results() -> dict[str, Any]:
    return copy.deepcopy(minimal_results())


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with results.json, four figures (with their data) and analyses.

    Shared by the whole session: tests that change it work on a copy (``copy_run``).
    """
    run = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    results = minimal_results()
    bpd = {
        "fashion-mnist:test": rng.normal(2.95, 0.5, 300),
        "mnist-10k:test": rng.normal(1.85, 0.3, 300),
    }
    terms = {
        label: {"log_pz": rng.normal(-150, 10, 300), "logdet": rng.normal(20, 5, 300)}
        for label in bpd
    }
    results["figures"] = {
        "bpd_histograms": save_figure(
            run, "bpd_histograms", "bpd_histograms", scores=bpd, title="t", num_dims=NUM_DIMS
        ),
        "decomposition": save_figure(
            run, "decomposition", "decomposition_histograms", terms=terms, num_dims=NUM_DIMS
        ),
        "graying": save_figure(
            run, "graying", "graying_plot", curves={"fashion-mnist:test": [(1.0, 3.0), (0.0, 2.0)]}
        ),
        "samples": save_figure(
            run,
            "samples",
            "sample_grid",
            images=rng.integers(0, 256, (16, 1, 8, 8), np.uint8),
            temperature=0.7,
        ),
    }
    # Every probe set genood reproduce uses, long names included (the table must still fit).
    for row in results["detection"].values():
        row["probes"] = {name: {"auroc": 0.912, "fpr95": 0.3, "tpr": 0.87} for name in PROBE_SETS}
    in_bpd, ood_bpd = rng.normal(3, 0.3, (3, 200)), rng.normal(2.5, 0.3, (3, 200))
    results["analyses"] = {
        "decomposition": decompose(
            terms["fashion-mnist:test"], terms["mnist-10k:test"], NUM_DIMS
        ).to_dict(),
        "ensembles": ensemble_analysis(in_bpd, ood_bpd, NUM_DIMS).to_dict(),
        "second_order": {
            "num_dims": NUM_DIMS,
            "scale": "x = y/256 - 1/2",
            "variance_differences": [-15.05],
            "measured_gap": 310.0,
            "measured_gap_bpd": -1.1,
            "predicted": {"paper_formula": 42.0, "hessian_variance": -5.0},
            "headline": "paper_formula",
            "sign_match": True,
            "alphas": [1.3],
            "prior_var": 1.0,
            "notes": [],
        },
        "graying": {"fashion-mnist:test": [[1.0, 3.0], [0.5, 2.5], [0.0, 2.0]]},
        "cv_glow_training": {
            "ood": "mnist-10k:test",
            "steps": [100, 200, 300],
            "in_bpd": [5.1, 4.6, 4.4],
            "ood_bpd": [4.9, 4.3, 4.5],
        },
        "misc": {"steps": [1, 2, 3], "nested": {"a": 1.5, "b": "text"}},
    }
    (run / "results.json").write_text(json.dumps(results, indent=2))
    return run


@pytest.fixture
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`run_dir` that a test may modify."""
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run"))
