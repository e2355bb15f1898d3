"""Periodic evaluation during training: held-out bits/dim, tracked OOD sets, sample grids.

Evaluation uses bin midpoints (``u = 1/2``, no dequantisation noise) in fp32, the same
deterministic convention as ``genood score``, so the curves in ``metrics.jsonl`` are comparable
with the scores of the finished model. Under DDP each rank evaluates a contiguous shard and the
sums are reduced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genood.io import atomic_path
from genood.models.base import LikelihoodModel
from genood.train.batches import shard_range
from genood.train.distributed import DistContext


@torch.no_grad()
def mean_bits_per_dim(
    model: LikelihoodModel,
    images: np.ndarray,
    context: DistContext,
    batch_size: int = 256,
) -> float:
    """Mean bits/dim of uint8 ``images`` (midpoint dequantisation, fp32, eval mode)."""
    was_training = model.training
    model.eval()
    start, stop = shard_range(len(images), context.rank, context.world_size)
    device = model.device
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    try:
        for first in range(start, stop, batch_size):
            batch = torch.from_numpy(np.asarray(images[first : min(first + batch_size, stop)]))
            x = model.preprocess(batch, dequantize=False)
            bits = model.bits_from_log_prob(model.log_prob(x).double(), x)
            totals[0] += bits.sum()
            totals[1] += len(bits)
    finally:
        model.train(was_training)
    context.all_reduce_sum(totals)
    total, count = totals.tolist()
    return total / count if count else float("nan")


@torch.no_grad()
def sample_grid(
    model: LikelihoodModel, path: Path, step_seed: int, count: int = 64, temperature: float = 1.0
) -> bool:
    """Draw ``count`` samples and save them as a PNG grid; ``False`` if the model cannot sample.

    The draw uses its own RNG seeded from ``step_seed``, so sampling never shifts the training
    random streams (a run with and without samples trains identically).
    """
    was_training = model.training
    model.eval()
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(step_seed)
            images = model.sample_images(count, temperature=temperature)
    except NotImplementedError:
        return False
    finally:
        model.train(was_training)
    save_grid(images.cpu().numpy(), path)
    return True


def save_grid(images: np.ndarray, path: Path, columns: int = 0, padding: int = 2) -> None:
    """Tile uint8 ``(N, C, H, W)`` images (C = 1 or 3) into one PNG with Pillow."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"save_grid expects uint8 (N, 1|3, H, W), got {images.dtype} {images.shape}"
        )
    n, channels, height, width = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        255,
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    with atomic_path(path) as temporary:
        Image.fromarray(grid[..., 0] if channels == 1 else grid).save(temporary, format="PNG")
