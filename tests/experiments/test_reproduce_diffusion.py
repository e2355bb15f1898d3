"""``genood reproduce`` with the shipped diffusion budget, end to end at a tiny size.

FashionMNIST and MNIST are written as the official IDX files (random digits-sized images), so
the whole pipeline runs: data layer, training the diffusion model the budget names, scoring with
its Monte Carlo bound, detection, C1, C4 read on the bound's terms, C7, results.json (validated)
and report.html.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from genood.experiments.reproduce import reproduce
from genood.experiments.spec import load_experiment
from genood.report.schema import validate_results


@pytest.mark.slow
def test_the_diffusion_budget_reproduces_end_to_end(idx_data: Path, tmp_path: Path) -> None:
    experiment = load_experiment("fashion-mnist-vs-mnist")
    shipped = experiment.budget("diffusion-cpu")
    assert shipped.model["name"] == "diffusion" and {"C1", "C4"} <= set(shipped.claims)
    budget = replace(
        shipped,
        model={
            "name": "diffusion",
            "hparams": {
                **shipped.model["hparams"],
                "hidden": 8,
                "score_samples": 2,
                "sample_steps": 4,  # the report draws 36 samples
            },
        },
        train={**shipped.train, "steps": 2, "time_budget_s": 0, "threads": 1},
        score_limit=12,
    )
    experiment = replace(experiment, budgets={"tiny": budget}, reverse="")
    out = tmp_path / "run"
    reproduce(experiment, "tiny", out, data_dir=idx_data, progress=False)
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert set(results["detection"]) == set(shipped.detectors)
    claims = {c["id"]: c for c in results["claims"]}
    assert claims["C1"]["status"] in ("reproduced", "not reproduced")
    # C4 on the bound's terms: the diffusion term against the closed-form ones
    assert claims["C4"]["status"] in ("reproduced", "not reproduced")
    assert claims["C4"]["claim"].startswith("(diffusion model)")
    assert "diffusion term" in claims["C4"]["measured"]
    gaps = results["analyses"]["diffusion_terms"]["gaps_bits_per_dim"]
    assert set(gaps) == {"reconstruction", "prior", "diffusion"}
    assert (out / "report.html").exists()
