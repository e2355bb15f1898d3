"""The reproduction's steps: data preparation keeps the whole reason an OOD set is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import genood.data.sources as sources
from genood.experiments.spec import BudgetSpec, DataSpec, Experiment
from genood.experiments.stages import RunContext


def test_a_missing_ood_set_is_reported_whole(tmp_path: Path, monkeypatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", no_network)
    monkeypatch.setenv("GENOOD_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for name in ("in", "other"):
        images = rng.integers(0, 256, size=(20, 8, 8), dtype=np.uint8)
        np.savez(tmp_path / f"{name}.npz", images=images, labels=np.zeros(20, np.int64))
    data = DataSpec(
        in_train=f"npz:{tmp_path / 'in.npz'}",
        in_test=f"npz:{tmp_path / 'in.npz'}",
        ood=["mnist:test", f"npz:{tmp_path / 'other.npz'}"],
    )
    experiment = Experiment(name="t", description="", data=data, budgets={})
    budget = BudgetSpec(claims=["C1"], model={"name": "glow"}, train={})
    (tmp_path / "run").mkdir()
    ctx = RunContext(experiment, "t", budget, tmp_path / "run", tmp_path, "cpu", False)
    ctx.prepare_data()
    reason = ctx.missing_ood["mnist:test"]
    assert "\n" not in reason
    assert "sources tried" in reason and "genood data fetch mnist" in reason
    assert len(ctx.ood) == 1 and list(ctx.missing_ood) == ["mnist:test"]
