"""The shared trainer on text: the byte model fits a textfile: spec, resumes exactly, is scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from train_helpers import assert_bitwise_equal, final_parameters

from genood import config as cfg
from genood.train import fit, load_run, read_metrics

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


@pytest.fixture
def corpus(tmp_path: Path) -> str:
    """120 short texts, fortune-style, as a textfile: spec."""
    texts = [" ".join(WORDS[(i + k) % 8] for k in range(1 + i % 5)) for i in range(120)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n%\n".join(f"{t} {i}" for i, t in enumerate(texts)) + "\n")
    return f"textfile:{path}"


def text_config(train: str, **train_values: Any) -> cfg.RunConfig:
    values: dict[str, Any] = {
        "steps": 8,
        "batch_size": 8,
        "optimizer": "adam",
        "lr": 1e-2,
        "warmup_steps": 2,
        "log_every": 2,
        "eval_every": 4,
        "sample_every": -1,
        "checkpoint_every": 4,
        "threads": 1,
        "device": "cpu",
    }
    values.update(train_values)
    return cfg.from_dict(
        {
            "model": {"name": "bytelm", "hparams": {"embed": 8, "hidden": 16}},
            "data": {"train": train, "val": train, "val_limit": 16},
            "train": values,
        }
    )


def test_the_trainer_fits_text_and_reports_bits_per_char(tmp_path: Path, corpus: str) -> None:
    result = fit(text_config(corpus, steps=30), tmp_path / "run", progress=False)
    assert result["finished"] and result["nonfinite_skipped"] == 0
    train = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["event"] == "train"]
    assert train[-1]["loss_bpd"] < train[0]["loss_bpd"] < 8.5  # from about log2(256) = 8 down
    assert 0 < result["eval_bpd"] < train[0]["loss_bpd"]
    loaded = load_run(tmp_path / "run")
    assert loaded.model.image_shape == (1, 1, 128)


def test_a_resumed_text_run_matches_an_uninterrupted_one(tmp_path: Path, corpus: str) -> None:
    fit(text_config(corpus), tmp_path / "straight", progress=False)
    fit(text_config(corpus, steps=4), tmp_path / "resumed", progress=False)
    fit(text_config(corpus), tmp_path / "resumed", progress=False)
    assert_bitwise_equal(
        final_parameters(tmp_path / "straight"), final_parameters(tmp_path / "resumed")
    )
