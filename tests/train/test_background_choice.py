"""The label-free choice of the background's mutation rate and L2 (mutated held-out images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from train_helpers import tiny_config

from genood.cli import main
from genood.train import fit, load_run
from genood.train.background_choice import Candidate, choose_background, grid, proxy_ood


def test_grid_keeps_order_and_drops_duplicates() -> None:
    assert grid([0.1, 0.2], [0, 10]) == [
        Candidate(0.1, 0.0),
        Candidate(0.1, 10.0),
        Candidate(0.2, 0.0),
        Candidate(0.2, 10.0),
    ]
    assert grid([0.2, 0.2], [10]) == [Candidate(0.2, 10.0)]
    assert Candidate(0.2, 10.0).name == "mu0.2-l2_10"
    with pytest.raises(ValueError, match="at least one"):
        grid([], [10])


def test_proxy_mutates_each_part_at_its_rate() -> None:
    images = np.full((10, 1, 8, 8), 7, dtype=np.uint8)
    proxy = proxy_ood(images, [0.0, 1.0])
    assert proxy.dtype == np.uint8 and proxy.shape == images.shape
    assert np.array_equal(proxy[:5], images[:5])  # rate 0: untouched
    assert (proxy[5:] != 7).mean() > 0.9  # rate 1: every sub-pixel redrawn (1/256 stay 7)
    assert np.array_equal(images, np.full_like(images, 7))  # the input is not changed


def test_choose_background_trains_scores_and_copies_the_best(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    run = tmp_path / "run"
    fit(tiny_config(tiny_data["train"], steps=3), run, progress=False)
    said: list[str] = []
    result = choose_background(
        run, [0.1, 0.3], [0.0], held_out=tiny_data["test"], progress=False, say=said.append
    )
    names = sorted(p.name for p in (run / "background-candidates").iterdir())
    assert names == ["choice.json", "mu0.1-l2_0", "mu0.3-l2_0"]
    rows = result["candidates"]
    assert [(r["mutation_rate"], r["steps"]) for r in rows] == [(0.1, 3), (0.3, 3)]
    assert all(0.0 <= r["auroc"] <= 1.0 for r in rows)
    assert result["chosen"]["auroc"] == max(r["auroc"] for r in rows)
    assert result["images"] == 16 and result["proxy_rates"] == [0.1, 0.3]
    assert json.loads((run / "background-candidates" / "choice.json").read_text()) == result
    chosen = load_run(run / "background").config
    assert chosen.data.mutation_rate == result["chosen"]["mutation_rate"]
    assert chosen.train.l2 == 0.0 and chosen.train.steps == 3
    assert said[-1].startswith("chosen: mu")

    with pytest.raises(ValueError, match="--overwrite"):
        choose_background(run, [0.1, 0.3], [0.0], held_out=tiny_data["test"], progress=False)


def test_choice_needs_held_out_images(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    fit(tiny_config(tiny_data["train"], steps=2), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="--held-out SPEC"):
        choose_background(tmp_path / "run", [0.1, 0.2], [0.0], progress=False)


def test_cli_several_values_choose(
    tmp_path: Path, tiny_data: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    fit(tiny_config(tiny_data["train"], steps=2), run, progress=False)
    argv = ["train-background", "--run", str(run), "--mutation-rate", "0.1,0.2", "--no-progress"]
    assert main([*argv, "--steps", "5"]) != 0
    assert "leave out --steps" in capsys.readouterr().err
    assert main([*argv, "--l2", "0", "--held-out", tiny_data["test"]]) == 0
    assert load_run(run / "background").config.data.mutation_rate in (0.1, 0.2)
