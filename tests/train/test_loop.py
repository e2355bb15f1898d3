"""``fit``: the run folder, metrics, evaluation, resume rules, time budget, non-finite guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from train_helpers import assert_bitwise_equal, final_parameters, tiny_config

from genood import config as cfg
from genood.models.flow_model import FlowModel
from genood.train import NonFiniteError, fit, loop, read_metrics
from genood.train.nonfinite import NonFiniteGuard


def test_fit_writes_the_run_folder(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    config = tiny_config(tiny_data["train"], tiny_data["test"], sample_every=3)
    config.data.track = [tiny_data["train"]]
    run = tmp_path / "run"
    result = fit(config, run, progress=False)

    assert result["step"] == 6 and result["finished"] and result["stopped"] == "steps"
    assert result["nonfinite_skipped"] == 0
    assert 0 < result["eval_bpd"] < 10
    for name in (
        "config.toml",
        "environment.json",
        "preprocessing.json",
        "metrics.jsonl",
        "done.json",
    ):
        assert (run / name).is_file(), name
    assert cfg.load(run / "config.toml") == config
    env = json.loads((run / "environment.json").read_text())
    assert {"python", "torch", "numpy", "device", "threads", "cpu", "command"} <= set(env)
    assert env["threads"] == 1 and env["precision"] == "fp32"

    events = read_metrics(run / "metrics.jsonl")
    train = [e for e in events if e["event"] == "train"]
    assert [e["step"] for e in train] == [2, 4, 6]
    for event in train:
        assert {"loss_bpd", "lr", "img_per_s", "nonfinite_skipped", "grad_norm", "time"} <= set(
            event
        )
    evals = [e for e in events if e["event"] == "eval"]
    assert evals[-1]["step"] == 6
    assert set(evals[-1]["track_bpd"]) == {tiny_data["train"]}
    assert events[-1]["event"] == "end"
    assert train[0]["lr"] == pytest.approx(1e-3)  # warm-up of 2 steps is over at step 2

    samples = sorted((run / "samples").glob("step-*.png"))
    assert [p.name for p in samples] == ["step-0000003.png", "step-0000006.png"]
    with Image.open(samples[0]) as grid:
        assert grid.mode == "L" and grid.size[0] > 8 * 8


def test_loss_goes_down(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    config = tiny_config(tiny_data["train"], steps=40, log_every=10, batch_size=16, warmup_steps=5)
    fit(config, tmp_path / "run", progress=False)
    losses = [
        e["loss_bpd"]
        for e in read_metrics(tmp_path / "run" / "metrics.jsonl")
        if e["event"] == "train"
    ]
    assert losses[-1] < losses[0] - 0.05


def test_finished_run_is_not_retrained(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    config = tiny_config(tiny_data["train"])
    first = fit(config, tmp_path / "run", progress=False)
    events = len(read_metrics(tmp_path / "run" / "metrics.jsonl"))
    again = fit(config, tmp_path / "run", progress=False)
    assert again == json.loads((tmp_path / "run" / "done.json").read_text())
    assert again["step"] == first["step"]
    assert len(read_metrics(tmp_path / "run" / "metrics.jsonl")) == events


def test_more_steps_continue_exactly(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    """Stopping at step 4 and continuing to 8 equals training to 8 (fp32, CPU, 1 thread)."""
    straight = tiny_config(tiny_data["train"], steps=8, checkpoint_every=0)
    fit(straight, tmp_path / "straight", progress=False)
    fit(tiny_config(tiny_data["train"], steps=4), tmp_path / "split", progress=False)
    result = fit(tiny_config(tiny_data["train"], steps=8), tmp_path / "split", progress=False)
    assert result["step"] == 8
    assert_bitwise_equal(
        final_parameters(tmp_path / "straight"), final_parameters(tmp_path / "split")
    )
    resumed = [
        e for e in read_metrics(tmp_path / "split" / "metrics.jsonl") if e["event"] == "resume"
    ]
    assert resumed[0]["step"] == 4 and resumed[0]["changed"] == ["train.steps"]


def test_incompatible_config_is_not_resumed(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    fit(tiny_config(tiny_data["train"], steps=2), tmp_path / "run", progress=False)
    other = tiny_config(tiny_data["train"], steps=4)
    other.model.hparams["hidden"] = 16
    with pytest.raises(ValueError, match=r"model\.hparams\.hidden.*--no-resume --overwrite"):
        fit(other, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"would delete .*checkpoints/last\.pt, done\.json"):
        fit(other, tmp_path / "run", resume=False, progress=False)  # results: --overwrite too
    result = fit(other, tmp_path / "run", resume=False, progress=False, overwrite=True)
    assert result["step"] == 4
    starts = [e["event"] for e in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert starts.count("start") == 1 and "resume" not in starts  # the old metrics are gone


def test_time_budget_stops_cleanly(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    config = tiny_config(tiny_data["train"], steps=10_000, time_budget_s=1e-9, log_every=1)
    result = fit(config, tmp_path / "run", progress=False)
    assert result["stopped"] == "time_budget" and result["finished"]
    assert result["step"] < 10_000
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def _poison(monkeypatch: pytest.MonkeyPatch, calls: set[int]) -> None:
    """Make the training forward passes numbered in ``calls`` return NaN (1: the init pass)."""
    original = FlowModel.log_prob_terms
    counter = {"n": 0}

    def poisoned(self: FlowModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = original(self, x)
        if self.training:
            counter["n"] += 1
            if counter["n"] in calls:
                terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(FlowModel, "log_prob_terms", poisoned)


def test_nan_batch_is_skipped_counted_and_logged(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison(monkeypatch, {3, 5})  # forward 1 is the data-dependent init: steps 1 and 3
    result = fit(tiny_config(tiny_data["train"]), tmp_path / "run", progress=False)
    assert result["nonfinite_skipped"] == 2 and result["step"] == 6
    events = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [e["step"] for e in events if e["event"] == "nonfinite"] == [1, 3]
    assert [e["nonfinite_skipped"] for e in events if e["event"] == "train"] == [1, 2, 2]
    assert all(torch.isfinite(v).all() for v in final_parameters(tmp_path / "run").values())


def test_nonfinite_in_a_row_stop_the_run(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison(monkeypatch, set(range(3, 100)))
    config = tiny_config(tiny_data["train"], steps=20, max_nonfinite=4)
    with pytest.raises(NonFiniteError, match=r"4 optimiser steps in a row.*lower train\.lr"):
        fit(config, tmp_path / "run", progress=False)


def test_mutation_changes_training(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    plain = tiny_config(tiny_data["train"], steps=2)
    mutated = tiny_config(tiny_data["train"], steps=2)
    mutated.data.mutation_rate = 0.3
    fit(plain, tmp_path / "plain", progress=False)
    fit(mutated, tmp_path / "mutated", progress=False)
    a, b = final_parameters(tmp_path / "plain"), final_parameters(tmp_path / "mutated")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_bad_configs_fail_clearly(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="fp16 training needs CUDA"):
        fit(tiny_config(tiny_data["train"], precision="fp16"), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit(tiny_config(tiny_data["train"], optimizer="sgd"), tmp_path / "b", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device cpu"):
            fit(tiny_config(tiny_data["train"], device="cuda"), tmp_path / "c", progress=False)


class _DeviceGuard(NonFiniteGuard):
    """The guard as it runs on CUDA (flags stay on the device), forced on CPU."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["sync"] = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def test_on_device_guard_trains_like_the_sync_guard(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison(monkeypatch, {4, 6})
    synced = fit(tiny_config(tiny_data["train"]), tmp_path / "sync", progress=False)
    _poison(monkeypatch, {4, 6})
    monkeypatch.setattr(loop, "NonFiniteGuard", _DeviceGuard)
    on_device = fit(tiny_config(tiny_data["train"]), tmp_path / "device", progress=False)
    assert synced["nonfinite_skipped"] == on_device["nonfinite_skipped"] == 2
    assert_bitwise_equal(final_parameters(tmp_path / "sync"), final_parameters(tmp_path / "device"))

    _poison(monkeypatch, set(range(3, 100)))
    with pytest.raises(NonFiniteError, match="in a row"):
        fit(
            tiny_config(tiny_data["train"], steps=20, max_nonfinite=3),
            tmp_path / "bad",
            progress=False,
        )
    assert read_metrics(tmp_path / "bad" / "metrics.jsonl")[-1]["event"] == "error"
