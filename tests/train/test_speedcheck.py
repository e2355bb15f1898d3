"""``precision = "auto"``: a timed choice, cached per machine, recorded with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config

from genood.train import fit, speedcheck
from genood.train import precision as prec

CPU = torch.device("cpu")


def test_the_timed_step_runs_in_both_precisions_and_gives_a_ratio() -> None:
    for bf16 in (False, True):
        speedcheck.coupling_step(CPU, bf16, batch=2, hidden=8)()
    assert speedcheck.measure_bf16_speedup(CPU, rounds=1) > 0


@pytest.mark.parametrize(("speedup", "expected"), [(3.1, "bf16"), (1.1, "fp32"), (0.2, "fp32")])
def test_auto_picks_bf16_only_when_it_measured_faster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, speedup: float, expected: str
) -> None:
    monkeypatch.setenv("GENOOD_CACHE", str(tmp_path))
    monkeypatch.setattr(speedcheck, "measure_bf16_speedup", lambda device: speedup)
    chosen = prec.resolve_precision("auto", CPU)
    assert (chosen.name, chosen.requested) == (expected, "auto")
    assert f"{speedup:.2f}x" in chosen.note and f"chose {expected}" in chosen.note


def test_the_measurement_is_cached_per_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []

    def measure(device: torch.device) -> float:
        calls.append(1)
        return 2.5

    monkeypatch.setattr(speedcheck, "measure_bf16_speedup", measure)
    cache = tmp_path / "precision.json"
    assert speedcheck.bf16_speedup(CPU, cache) == (2.5, False)
    assert speedcheck.bf16_speedup(CPU, cache) == (2.5, True)
    assert calls == [1]
    assert json.loads(cache.read_text()) == {speedcheck.machine_key(CPU): 2.5}
    assert "cached measurement" in speedcheck.choose_precision(CPU, cache)[1]


def test_a_corrupt_cache_is_measured_again_and_rewritten(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(speedcheck, "measure_bf16_speedup", lambda device: 0.3)
    cache = tmp_path / "precision.json"
    cache.write_text("not json")
    assert speedcheck.bf16_speedup(CPU, cache) == (0.3, False)
    assert json.loads(cache.read_text())[speedcheck.machine_key(CPU)] == 0.3


def test_a_run_records_the_choice_and_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    monkeypatch.setenv("GENOOD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(speedcheck, "measure_bf16_speedup", lambda device: 0.25)
    fit(
        tiny_config(tiny_data["train"], steps=1, precision="auto"), tmp_path / "run", progress=False
    )
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert (env["precision"], env["precision_requested"]) == ("fp32", "auto")
    assert "0.25x" in env["precision_note"]
