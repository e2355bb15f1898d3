"""The Jacobian-penalty sweep (``genood reproduce smear-fashion-mnist``) end to end on tiny
synthetic FashionMNIST and MNIST IDX files: one reproduction per lambda, the curve's table in
``smear.json`` and ``results.json``, the figure and the report."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from genood.experiments.reproduce import reproduce
from genood.experiments.spec import BudgetSpec, SweepSpec, load_experiment
from genood.experiments.sweep import lambda_dir
from genood.report.schema import validate_results

TINY_GLOW = {"levels": 2, "steps": 1, "hidden": 8, "coupling": "affine", "permutation": "lu"}
TINY_TRAIN = {
    "steps": 3,
    "batch_size": 8,
    "warmup_steps": 1,
    "checkpoint_every": 0,
    "threads": 1,
    "device": "cpu",
}


def test_shipped_sweep_parses() -> None:
    exp = load_experiment("smear-fashion-mnist")
    from genood.ood import RECOMMENDED

    assert exp.sweep is not None and exp.sweep.detector == RECOMMENDED
    assert SweepSpec(jacobian_penalties=[0.0]).detector == RECOMMENDED
    lambdas = exp.sweep.jacobian_penalties
    assert len(lambdas) >= 4 and lambdas[0] == 0.0 and lambdas == sorted(lambdas)
    assert exp.budget("cpu").train["threads"] == 1


def test_bad_sweeps_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct numbers >= 0"):
        SweepSpec(jacobian_penalties=[0.0, -1.0])
    with pytest.raises(ValueError, match="distinct numbers >= 0"):
        SweepSpec(jacobian_penalties=[])
    assert SweepSpec(jacobian_penalties=[1e-2, 0]).jacobian_penalties == [0.0, 1e-2]
    assert lambda_dir(0.0) == "lambda-0" and lambda_dir(1e-3) == "lambda-0.001"


def test_sweep_runs_end_to_end(tmp_path: Path, idx_data: Path) -> None:
    exp = load_experiment("smear-fashion-mnist")
    budget = BudgetSpec(
        claims=["C1", "C4"],
        model={"name": "glow", "hparams": TINY_GLOW},
        train=TINY_TRAIN,
        score_limit=30,
        detectors=["likelihood"],
        scaled_down=["tiny"],
    )
    exp = replace(
        exp,
        data=replace(exp.data, ood=["mnist:test"]),
        budgets={"quick": budget},
        sweep=SweepSpec(jacobian_penalties=[0.0, 0.05], sensitivity_images=8),
    )
    out = tmp_path / "sweep"
    report = reproduce(exp, "quick", out, data_dir=idx_data, device="cpu", progress=False)

    table = json.loads((out / "smear.json").read_text())
    assert table["lambdas"] == [0.0, 0.05] and table["detector"] == "dos"
    rows = table["rows"]
    for row in rows:
        for key in ("test_bpd", "gap", "gap_distribution", "gap_volume", "likelihood_auroc"):
            assert math.isfinite(row[key]), key
        assert row["gap"] == pytest.approx(row["gap_distribution"] + row["gap_volume"])
        assert row["gap"] == pytest.approx(row["ood_bpd"] - row["test_bpd"])
        assert row["detector_auroc"] is not None and 0.0 <= row["detector_auroc"] <= 1.0
        assert row["steps"] == 3 and row["seconds_per_step"] > 0
        assert row["test_r_per_dim"] > 0 and row["ood_r_per_dim"] > 0
    assert rows[0]["train_r_per_dim"] is None  # lambda = 0 never computes R while training
    assert rows[1]["train_r_per_dim"] > 0
    for value in (0.0, 0.05):  # each lambda is a full reproduction with its own report
        sub = out / lambda_dir(value)
        config = (sub / "models" / "main" / "config.toml").read_text()
        assert f"jacobian_penalty = {value!r}" in config
        assert (sub / "report.html").is_file()

    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert results["experiment"] == "smear-fashion-mnist"
    assert results["analyses"]["jacobian_penalty"]["rows"] == rows
    assert (out / results["figures"]["smear_curve"]).is_file()
    html = report.read_text()
    assert 'id="jacobian-sweep"' in html and 'id="fig-smear_curve"' in html
    assert "dos AUROC" in html

    again = reproduce(exp, "quick", out, data_dir=idx_data, device="cpu", progress=False)
    assert json.loads((out / "smear.json").read_text())["rows"][0]["test_bpd"] == pytest.approx(
        rows[0]["test_bpd"]
    )  # a rerun reuses every trained lambda
    assert again == report
