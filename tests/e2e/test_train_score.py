"""``genood train`` then ``genood score`` as a user runs them, on tiny synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CONFIG = """
[model]
name = "glow"
[model.hparams]
levels = 2
steps = 2
hidden = 8

[data]
train = "npz:{train}"
val = "npz:{test}"
pad_to = 8

[train]
steps = 12
batch_size = 16
warmup_steps = 4
log_every = 4
eval_every = 6
sample_every = 6
checkpoint_every = 6
threads = 1
"""


def _write(path: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, 7)[None, None, None, :]
    images = (rng.integers(0, 80, (count, 1, 7, 7)) + ramp).astype(np.uint8)
    np.savez(path, images=images, labels=np.arange(count) % 10)


def _genood(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genood", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_train_then_score(tmp_path: Path) -> None:
    _write(tmp_path / "train.npz", 64, seed=0)
    _write(tmp_path / "test.npz", 24, seed=1)
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(train=tmp_path / "train.npz", test=tmp_path / "test.npz"))
    run = tmp_path / "runs" / "tiny"

    trained = _genood(
        "train", "--config", str(config), "--out", str(run), "--device", "cpu", "--no-progress"
    )
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout.split("\n", 1)[1])
    assert (
        result["step"] == 12 and result["stopped"] == "steps" and result["nonfinite_skipped"] == 0
    )
    assert np.isfinite(result["eval_bpd"]) and 0 < result["eval_bpd"] < 9
    for name in (
        "config.toml",
        "environment.json",
        "metrics.jsonl",
        "preprocessing.json",
        "checkpoints/last.pt",
        "done.json",
        "samples/step-0000012.png",
    ):
        assert (run / name).is_file(), name

    scored = _genood(
        "score",
        "--run",
        str(run),
        "--dataset",
        f"npz:{tmp_path / 'test.npz'}",
        "--limit",
        "20",
        "--batch-size",
        "8",
        "--no-progress",
    )
    assert scored.returncode == 0, scored.stderr
    assert "N = 20, D = 64 (1x8x8)" in scored.stdout  # 7x7 images padded to 8x8 as recorded
    assert "bits/dim" in scored.stdout and "logdet [nats]" in scored.stdout
    scores = np.load(run / "scores" / "npz-test.npz")
    assert scores["bits_per_dim"].shape == (20,)
    assert np.allclose(scores["log_pz"] + scores["logdet"], scores["log_prob"])
    assert abs(scores["bits_per_dim"].mean() - result["eval_bpd"]) < 0.1

    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, images=np.zeros((3, 3, 7, 7), np.uint8))
    refused = _genood("score", "--run", str(run), "--dataset", f"npz:{rgb}", "--no-progress")
    assert refused.returncode == 1
    assert "--channels 1" in refused.stderr and "Traceback" not in refused.stderr
