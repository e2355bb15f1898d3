"""The shared detection workflow: statistics once per whole set, slices for fit and calibration."""

from __future__ import annotations

import numpy as np
import pytest

import genood.ood as ood
from genood.ood import workflow
from genood.ood.statistics import subset


def test_every_set_goes_through_the_model_once(model, data, monkeypatch) -> None:
    calls = []
    original = model.log_prob_terms
    monkeypatch.setattr(model, "log_prob_terms", lambda x: calls.append(len(x)) or original(x))
    store = ood.Statistics(batch_size=100_000)
    detectors = {s: ood.build(s, model, store=store) for s in ("likelihood", "typicality", "dos")}
    stats = workflow.gather_sets(detectors, {"in": data["val"], "noise": data["noise"]}, store)
    split = workflow.holdout_split(len(data["val"]), 0.4, seed=0)
    results = workflow.evaluate(
        detectors,
        subset(stats["in"], split.evaluation),
        {"noise": stats["noise"]},
        fit=subset(stats["in"], split.fit),
        calibration=subset(stats["in"], split.calibration),
        target_fpr=0.1,
    )
    assert calls == [len(data["val"]), len(data["noise"])]
    assert results.headline == "noise"
    for name in detectors:
        assert results.metrics[name]["auroc"] > 0.9
        assert results.out_scores["noise"][name].shape == (len(data["noise"]),)


def test_a_tiny_ood_set_comes_with_a_warning(model, data) -> None:
    detectors = {"likelihood": ood.build("likelihood", model)}
    store = detectors["likelihood"].store
    stats = workflow.gather_sets(detectors, {"in": data["val"], "one": data["noise"][:1]}, store)
    results = workflow.evaluate(
        detectors,
        subset(stats["in"], slice(500, None)),
        {"one": stats["one"]},
        fit=subset(stats["in"], slice(0, 250)),
        calibration=subset(stats["in"], slice(250, 500)),
    )
    assert any("1 image" in w for w in results.warnings)


def test_holdout_split_is_disjoint_and_checked() -> None:
    split = workflow.holdout_split(100, 0.3, seed=1)
    together = np.concatenate([split.fit, split.calibration, split.evaluation])
    assert sorted(together.tolist()) == list(range(100))
    assert len(split.fit) == 15 and len(split.calibration) == 15
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        workflow.holdout_split(100, 1.0)
    with pytest.raises(ValueError, match="cannot hold out"):
        workflow.holdout_split(2, 0.1)
