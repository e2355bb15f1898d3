"""Tiny data sets and configs shared by the training tests (real Glow, 1x8x8 images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genood import config as cfg
from genood.train import checkpoint as ckpt

TINY_GLOW = {"levels": 2, "steps": 1, "hidden": 8}


def write_images(
    path: Path, count: int, shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0
) -> str:
    """Structured uint8 images (a horizontal ramp plus noise) as ``npz:PATH``."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, shape[2])[None, None, None, :]
    images = (rng.integers(0, 80, (count, *shape)) + ramp).astype(np.uint8)
    labels = (np.arange(count) % 10).astype(np.int64)
    np.savez(path, images=images, labels=labels)
    return f"npz:{path}"


def tiny_config(train: str, val: str = "", **train_values: Any) -> cfg.RunConfig:
    """A Glow of 2 levels x 1 step (width 8) trained for a few steps on one thread."""
    values: dict[str, Any] = {
        "steps": 6,
        "batch_size": 8,
        "warmup_steps": 2,
        "log_every": 2,
        "eval_every": 0,
        "sample_every": -1,
        "checkpoint_every": 3,
        "threads": 1,
        "device": "cpu",
    }
    values.update(train_values)
    return cfg.from_dict(
        {
            "model": {"name": "glow", "hparams": dict(TINY_GLOW)},
            "data": {"train": train, "val": val, "val_limit": 0},
            "train": values,
        }
    )


def final_parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model state of a run's last checkpoint."""
    return ckpt.load(Path(run_dir) / "checkpoints" / "last.pt")["model"]


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"
