"""``genood reproduce hvae-fashion-mnist-vs-mnist`` end to end at a tiny size: binarised data,
the authors' HVAE layout, LLR^{>k} detection and the L^{>k} table in results.json."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from genood.experiments.reproduce import reproduce
from genood.experiments.spec import load_experiment
from genood.report.schema import validate_results


@pytest.mark.slow
def test_the_hvae_experiment_reproduces_end_to_end(idx_data: Path, tmp_path: Path) -> None:
    experiment = load_experiment("hvae-fashion-mnist-vs-mnist")
    shipped = experiment.budget("cpu")
    assert experiment.data.binarize == "dynamic" and "llr:1:mode" in shipped.detectors
    budget = replace(
        shipped,
        model={"name": "hvae", "hparams": {**shipped.model["hparams"], "hidden": 8, "blocks": 1}},
        train={**shipped.train, "steps": 2, "time_budget_s": 0, "threads": 1, "batch_size": 8},
        score_limit=12,
    )
    experiment = replace(experiment, budgets={"tiny": budget})
    out = tmp_path / "run"
    reproduce(experiment, "tiny", out, data_dir=idx_data, progress=False)
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert set(results["detection"]) == set(shipped.detectors)
    table = results["analyses"]["hierarchical_bounds"]
    assert table["k"] == [0, 1, 2]
    assert set(table["sets"]) == {results["in_distribution"], *results["ood"]}
    assert table["sets"][results["ood"][0]]["n"] == 12
    record = json.loads((out / "models" / "main" / "preprocessing.json").read_text())
    assert record["binarize"] == "dynamic"
    html = (out / "report.html").read_text()
    assert "L^{&gt;1}" in html and "(ELBO)" in html
