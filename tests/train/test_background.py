"""Ren et al.'s background model: the run's config with mutation, trained into RUN/background."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import tiny_config

from genood import config as cfg
from genood.train import background_config, fit, fit_background, load_run
from genood.train import checkpoint as ckpt
from genood.train.background import MainSteps, main_steps
from genood.train.optim import l2_decay


def test_background_config() -> None:
    main = tiny_config("npz:x.npz", steps=10)
    config = background_config(
        main, mutation_rate=0.3, steps=4, overrides=["train.weight_decay=1e-4"]
    )
    assert config.data.mutation_rate == 0.3
    assert config.train.steps == 4 and config.train.weight_decay == 1e-4
    assert config.model == main.model and main.data.mutation_rate == 0.0
    with pytest.raises(ValueError, match="mutation rate"):
        background_config(main, mutation_rate=0.0)


def test_fit_background(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    fit(tiny_config(tiny_data["train"], steps=2), tmp_path / "run", progress=False)
    result = fit_background(tmp_path / "run", mutation_rate=0.2, steps=3, progress=False)
    assert result["step"] == 3
    background = load_run(tmp_path / "run" / "background")
    assert background.config.data.mutation_rate == 0.2
    assert background.model.image_shape == load_run(tmp_path / "run").model.image_shape
    assert cfg.load(tmp_path / "run" / "background" / "config.toml").data.mutation_rate == 0.2


def test_background_trains_the_steps_the_main_model_reached(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    # The main run reached 4 steps (done.json) but its config asks for 50, as when a time
    # budget stopped it: the background trains 4, with no time budget.
    main = tiny_config(tiny_data["train"], steps=4)
    fit(main, tmp_path / "run", progress=False)
    asked = cfg.load(tmp_path / "run" / "config.toml", ["train.steps=50"])
    cfg.save(asked, tmp_path / "run" / "config.toml")
    said: list[str] = []
    result = fit_background(tmp_path / "run", progress=False, say=said.append)
    assert result["step"] == 4 and result["stopped"] == "steps"
    recorded = cfg.load(tmp_path / "run" / "background" / "config.toml")
    assert recorded.train.steps == 4 and recorded.train.time_budget_s == 0.0
    assert recorded.train.l2 == 10.0 and recorded.data.mutation_rate == 0.2
    assert "4 steps (as many as the main model reached" in said[0]
    # The L2 penalty was applied: the kernels' group carries its decay (D = 64 here).
    state = ckpt.load(tmp_path / "run" / "background" / "checkpoints" / "last.pt")
    groups = state["optimizer"]["param_groups"]
    assert [(g["l2"], g["weight_decay"]) for g in groups] == [
        (True, pytest.approx(l2_decay(10.0, 64))),
        (False, 0.0),
    ]


def test_extending_the_pair_is_training_it_longer(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    # Main model and background trained 3 steps, then both extended to 6 (the main run with
    # more train.steps, the background with its defaults): the same weights, bit for bit, as
    # a pair trained 6 steps at once (resume is exact and the schedule is a function of the
    # step), and the background resumed its checkpoint rather than starting over.
    from train_helpers import assert_bitwise_equal, final_parameters

    fit(tiny_config(tiny_data["train"], steps=3), tmp_path / "short", progress=False)
    fit_background(tmp_path / "short", progress=False, say=lambda _: None)
    fit(tiny_config(tiny_data["train"], steps=6), tmp_path / "short", progress=False)
    said: list[str] = []
    result = fit_background(tmp_path / "short", progress=False, say=said.append)
    assert result["step"] == 6 and "6 steps (as many as the main model reached" in said[0]
    lines = (tmp_path / "short" / "background" / "metrics.jsonl").read_text().splitlines()
    starts = [(e["event"], e["step"]) for e in map(json.loads, lines) if "world_size" in e]
    assert starts == [("start", 0), ("resume", 3)]

    fit(tiny_config(tiny_data["train"], steps=6), tmp_path / "long", progress=False)
    fit_background(tmp_path / "long", progress=False, say=lambda _: None)
    for folder in ("", "background"):
        assert_bitwise_equal(
            final_parameters(tmp_path / "short" / folder),
            final_parameters(tmp_path / "long" / folder),
        )


def test_background_of_an_unfinished_run_gets_its_configured_steps(tmp_path: Path) -> None:
    main = tiny_config("npz:x.npz", steps=3000, time_budget_s=1800.0)
    (tmp_path / "run").mkdir()
    chosen = main_steps(tmp_path / "run", main)
    assert (chosen.steps, chosen.time_budget_s) == (3000, 1800.0)
    assert "unfinished" in chosen.note
    (tmp_path / "run" / "done.json").write_text('{"step": 1234}')
    assert main_steps(tmp_path / "run", main) == MainSteps(
        1234, 0.0, "as many as the main model reached, from its done.json"
    )


def test_l2_is_recorded_and_overridable() -> None:
    main = tiny_config("npz:x.npz", steps=10)
    assert background_config(main, l2=100.0).train.l2 == 100.0
    assert background_config(main, overrides=["train.l2=0"]).train.l2 == 0.0
    assert main.train.l2 == 0.0
    with pytest.raises(ValueError, match="L2 weight"):
        background_config(main, l2=-1.0)


def test_fit_background_needs_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train the main model first"):
        fit_background(tmp_path)
