"""The ``train``, ``train-background`` and ``score`` commands, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import tiny_config

from genood import config as cfg
from genood.cli import main
from genood.cli.score import dataset_spec
from genood.train import load_run, read_metrics


def test_dataset_spec() -> None:
    assert dataset_spec("mnist", "test") == "mnist:test"
    assert dataset_spec("mnist-10k", None) == "mnist-10k"
    assert dataset_spec("mnist-10k:test", None) == "mnist-10k:test"
    assert dataset_spec("npz:/a/b.npz", None) == "npz:/a/b.npz"
    with pytest.raises(ValueError, match="drop --split"):
        dataset_spec("mnist:test", "train")


def test_train_options_override_the_config(
    tmp_path: Path,
    tiny_data: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"]), config_path)
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "train",
            "--config",
            str(config_path),
            "--steps",
            "3",
            "--set",
            "train.lr=5e-4",
            "train.log_every=1",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0
    run = tmp_path / "runs" / "tiny"  # default: runs/<config stem>
    config = cfg.load(run / "config.toml")
    assert config.train.steps == 3 and config.train.lr == 5e-4 and config.train.device == "cpu"
    assert f"run folder: {Path('runs') / 'tiny'}" in capsys.readouterr().out

    # continue the run from its own folder, without --config
    assert main(["train", "--out", str(run), "--steps", "5", "--no-progress"]) == 0
    assert load_run(run).step == 5
    assert [e["event"] for e in read_metrics(run / "metrics.jsonl")].count("resume") == 1


def test_train_background_and_score(
    tmp_path: Path, tiny_data: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"], steps=2), config_path)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config_path), "--out", str(run), "--no-progress"]) == 0
    assert (
        main(
            [
                "train-background",
                "--run",
                str(run),
                "--mutation-rate",
                "0.1",
                "--l2",
                "100",
                "--steps",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    recorded = load_run(run / "background").config
    assert recorded.data.mutation_rate == 0.1 and recorded.train.l2 == 100.0
    capsys.readouterr()
    assert (
        main(
            [
                "score",
                "--run",
                str(run / "background"),
                "--dataset",
                tiny_data["test"],
                "--no-save",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "N = 16, D = 64 (1x8x8)" in out and "per-sample scores" not in out
    assert not (run / "background" / "scores").exists()


def test_errors_exit_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--no-progress"]) == 1
    assert "give --config" in capsys.readouterr().err
    assert main(["score", "--run", str(tmp_path), "--dataset", "mnist"]) == 1
    assert "has no checkpoint" in capsys.readouterr().err


def test_score_changes_a_vae_scoring_setting(
    tmp_path: Path, tiny_data: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tiny_data["train"], steps=1)
    config.model.name = "vae"
    config.model.hparams = {"latent_dim": 2, "hidden": 4, "downsamples": 1, "iw_samples": 4}
    config_path = tmp_path / "vae.toml"
    cfg.save(config, config_path)
    run = tmp_path / "vae"
    assert main(["train", "--config", str(config_path), "--out", str(run), "--no-progress"]) == 0
    score = ["score", "--run", str(run), "--dataset", tiny_data["test"], "--no-progress"]
    capsys.readouterr()
    assert main([*score, "--no-save", "--hparam", "iw_samples=2", "iw_batch=8"]) == 0
    out = capsys.readouterr().out
    assert "lower bound (IWAE, K=2); bits/dim are an upper bound" in out
    assert main([*score, "--hparam", "latent_dim=3"]) == 1
    assert "change the parameters" in capsys.readouterr().err


def test_train_records_the_allocator_setting(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"], steps=1), config_path)
    monkeypatch.setenv("GENOOD_MALLOC", "default")  # the user's choice, recorded as such
    run = tmp_path / "run"
    assert main(["train", "--config", str(config_path), "--out", str(run), "--no-progress"]) == 0
    environment = json.loads((run / "environment.json").read_text())
    assert environment["allocator"] == "allocator defaults (GENOOD_MALLOC=default)"
