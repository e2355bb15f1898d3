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


@pytest.mark.slow
def test_text_trains_under_ddp_as_in_one_process(tmp_path: Path, corpus: str) -> None:
    """2 gloo processes (torchrun) train and score the byte model as one process does."""
    import os
    import subprocess
    import sys

    import numpy as np
    import torch

    from genood.train import score_dataset

    config = text_config(corpus, steps=4, checkpoint_every=2)
    config.data.val = ""
    config_path = tmp_path / "text.toml"
    cfg.save(config, config_path)
    run = tmp_path / "ddp"
    driver = Path(__file__).with_name("ddp_driver.py")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    result = subprocess.run(
        [*torchrun, "2", str(driver), str(config_path), str(run), corpus],
        # this checkout's genood, whichever one the environment has installed
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    one = fit(config, tmp_path / "one", progress=False)
    assert one["step"] == 4
    ddp, single = final_parameters(run), final_parameters(tmp_path / "one")
    for name in ddp:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=0, msg=name)
    gathered = dict(np.load(next((run / "scores").glob("*.npz"))))
    alone = score_dataset(load_run(run), corpus, save=False, progress=False)
    np.testing.assert_allclose(gathered["bits_per_dim"], alone["bits_per_dim"], rtol=1e-6)
    assert set(alone) >= {"text", "end", "log_prob"}
