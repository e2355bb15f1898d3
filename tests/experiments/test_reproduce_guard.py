"""``genood reproduce ... --guard CLF_DIR``: the recommended gate and the classifier's baselines
in a tiny reproduction's detection table, with guard figures, in report.html, recomputed when
the classifier changes, and a classifier of the wrong image shape refused with the fix."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genood.experiments.reproduce import reproduce
from genood.experiments.spec import BudgetSpec, load_experiment
from genood.report.schema import validate_results

TINY_GLOW = {"levels": 2, "steps": 1, "hidden": 4, "coupling": "affine", "permutation": "lu"}
GUARDED = ("dos+mahalanobis+energy:2@fisher", "mahalanobis", "energy:2", "msp")


def _experiment():  # type: ignore[no-untyped-def]
    budget = BudgetSpec(
        claims=["C1"],
        model={"name": "glow", "hparams": TINY_GLOW},
        train={"steps": 2, "batch_size": 8, "warmup_steps": 1, "checkpoint_every": 0, "threads": 1},
        score_limit=30,
        detectors=["dos"],
        scaled_down=["a tiny Glow trained for 2 steps: a test of the pipeline"],
    )
    return replace(load_experiment("fashion-mnist-vs-mnist"), budgets={"tiny": budget}, reverse="")


def _classifier(data_dir: Path, folder: Path, shape: tuple[int, int, int], seed: int) -> Path:
    from genood.data import load
    from genood.ood import Classifier

    train = load("fashion-mnist:train", data_dir=data_dir, progress=False)
    images = np.asarray(train.images)
    if shape[1:] != images.shape[2:]:  # the wrong shape: padded as the Glow's input
        images = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    Classifier(shape, num_classes=10, width=4, seed=seed).fit(images, train.labels, epochs=1).save(
        folder
    )
    return folder


def test_the_gate_joins_the_table_with_guard_figures(
    idx_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genood.experiments import detection
    from genood.ood.registry import RECOMMENDED_GATE

    monkeypatch.setattr(detection, "PROBE_IMAGES", 40)  # a fast test: 40 images per probe

    assert GUARDED[0] == RECOMMENDED_GATE
    experiment, out = _experiment(), tmp_path / "run"
    first = _classifier(idx_data, tmp_path / "clf-a", (1, 28, 28), seed=0)
    reproduce(experiment, "tiny", out, data_dir=idx_data, progress=False, guard=first)
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert set(results["detection"]) == {"dos", *GUARDED}
    table = json.loads((out / "detection" / "detection.json").read_text())
    guard = table["_guard"]
    assert guard["classifier"] == str(first.resolve()) == results["classifier"]["folder"]
    assert guard["fingerprint"] == results["classifier"]["fingerprint"]
    assert results["guard"] == guard
    # Only the scores that read the classifier are put in front of it, each with the figures.
    assert set(guard["reports"]) == set(GUARDED)
    ood = [*results["ood"], *results["detection"]["dos"]["probes"]]
    for report in guard["reports"].values():
        assert 0.0 <= report["in_rejection_rate"] <= 1.0
        assert 0.0 <= report["accuracy_unguarded"] <= 1.0
        assert report["n_in"] == 80  # the 4/5 of the 100 test images not calibrated on
        assert list(report["ood_rejection_rates"]) == ood
    # The classifier read the probes as loaded (28x28), the Glow their padded 32x32.
    assert "probe:noise:1x28x28" in ood
    html = (out / "report.html").read_text()
    assert "(recommended gate, with a classifier)" in html and 'id="guard-table"' in html

    # Another classifier: the cached table is recomputed, not reused.
    second = _classifier(idx_data, tmp_path / "clf-b", (1, 28, 28), seed=1)
    reproduce(experiment, "tiny", out, data_dir=idx_data, progress=False, guard=second)
    again = json.loads((out / "detection" / "detection.json").read_text())
    assert again["_guard"]["classifier"] == str(second.resolve())
    assert again["_guard"]["fingerprint"] not in (None, guard["fingerprint"])
    # ... and without --guard the table is the plain one again.
    reproduce(experiment, "tiny", out, data_dir=idx_data, progress=False)
    plain = json.loads((out / "results.json").read_text())
    assert set(plain["detection"]) == {"dos"} and "guard" not in plain
    assert not (out / "detection" / "msp.npz").exists()
    assert 'id="guard-table"' not in (out / "report.html").read_text()


def test_a_classifier_of_another_shape_is_refused_with_the_fix(
    idx_data: Path, tmp_path: Path
) -> None:
    padded = _classifier(idx_data, tmp_path / "clf-32", (1, 32, 32), seed=0)
    with pytest.raises(ValueError, match="genood train-classifier --data fashion-mnist:train"):
        reproduce(_experiment(), "tiny", tmp_path / "run", data_dir=idx_data, guard=padded)
    assert not (tmp_path / "run" / "models").exists()  # refused before any training


def test_a_cached_table_is_stale_with_another_classifier_or_other_ood_sets() -> None:
    from types import SimpleNamespace

    from genood.experiments.detection import _stale

    ctx: Any = SimpleNamespace(ood=["mnist-10k:all"])
    plain = {"dos": {"per_ood": {"mnist-10k:all": {}}, "auroc_ci": [0.9, 1.0]}, "_protocol": {}}
    assert _stale(plain, ctx, None) is None
    assert "classifier none" in str(_stale(plain, ctx, "abc"))
    guarded = {**plain, "_guard": {"fingerprint": "abc"}}
    assert _stale(guarded, ctx, "abc") is None
    assert "this run has none" in str(_stale(guarded, ctx, None))
    # mnist:test reachable when the table was made, not now: recomputed, not reused.
    wider = {"dos": {"per_ood": {"mnist:test": {}, "mnist-10k:all": {}}}}
    assert "mnist:test, mnist-10k:all" in str(_stale(wider, ctx, None))
    # A table an earlier genood made, without intervals: recomputed, so the report has them.
    earlier = {"dos": {"per_ood": {"mnist-10k:all": {}}}, "_protocol": {}}
    assert "no AUROC intervals" in str(_stale(earlier, ctx, None))


def test_a_sweep_and_a_text_experiment_refuse_guard_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genood.cli import main

    # a sweep trains one run per lambda: the gate belongs to one run's `genood detect`
    with pytest.raises(ValueError, match="is a sweep: run `genood detect --run RUN/"):
        reproduce("smear-fashion-mnist", "quick", tmp_path / "sweep", guard=tmp_path / "clf")
    assert not (tmp_path / "sweep").exists()  # refused before anything was written
    # a text experiment has no image classifier to guard
    argv = ["reproduce", "text-fortunes-en-vs-others", "--guard", str(tmp_path / "clf")]
    assert main([*argv, "--out", str(tmp_path / "text"), "--no-progress"]) == 1
    assert "is a text experiment: leave --guard out" in capsys.readouterr().err
    assert not (tmp_path / "text").exists()


def test_an_unlabelled_test_set_is_refused_before_training(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from genood.experiments.detection import load_guard
    from genood.ood import Classifier

    folder = Classifier((1, 8, 8), num_classes=2, width=4).save(tmp_path / "clf")
    ctx: Any = SimpleNamespace(
        device="cpu",
        in_test="npz:test.npz",
        loaded={"npz:test.npz": np.zeros((5, 1, 8, 8), np.uint8)},
        labels={"npz:test.npz": np.full(5, -1)},
    )
    with pytest.raises(ValueError, match="unlabelled images: leave --guard out"):
        load_guard(ctx, folder)
