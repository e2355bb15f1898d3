"""The ``L^{>k}`` table of a hierarchical VAE: how each set's bound falls as the ``k`` lowest
latents are taken from the conditional prior (Havtorn et al. 2021, Table 1; Maaløe et al. 2019
for BIVA).

For each set and each ``k = 0 .. L - 1`` the table holds the mean and standard deviation over
images of ``L^{>k}`` in nats (``k = 0``: the ELBO), one posterior draw per image, the ``k`` lowest
latents at the conditional prior's mode (as the authors' ``scripts/ood-llr.py``), with a fixed
seed so that the table is reproducible. The mean ``LLR^{>k} = ELBO - L^{>k}`` of a set is the
difference of two rows. In-distribution images keep more of their bound when the low latents
are skipped than OOD images do, if the high latents carry the semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def bound_table(
    model: Any,
    sets: Mapping[str, np.ndarray],
    batch_size: int = 256,
    seed: int = 0,
    prior_mode: bool = True,
) -> dict[str, Any]:
    """``{"k": [0, ..., L-1], "prior_mode", "unit", "sets": {label: {"mean", "std", "n"}}}``.

    Args:
        model: a hierarchical VAE (``bound_above(x, k, samples, prior_mode)``, ``num_latents``).
        sets: uint8 ``(N, C, H, W)`` images per label, as the model takes them.
        batch_size: images per pass.
        seed: seed of the posterior draws (the global RNG is restored afterwards).
        prior_mode: the ``k`` lowest latents at the conditional prior's mean, else a sample.

    Raises:
        TypeError: the model has no ``L^{>k}`` bounds (not an ``hvae``).
    """
    if not hasattr(model, "bound_above") or not hasattr(model, "num_latents"):
        raise TypeError(
            f"the L^{{>k}} table needs a hierarchical VAE (model 'hvae'), got {type(model).__name__}"
        )
    ks = list(range(int(model.num_latents)))
    model.eval()
    devices = [model.device] if model.device.type == "cuda" else []
    table: dict[str, Any] = {}
    for label, images in sets.items():
        bounds = np.zeros((len(ks), len(images)))
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(images[start : start + batch_size])
                x = model.preprocess(batch, dequantize=False)
                for row, k in enumerate(ks):
                    bound = model.bound_above(x, k, 1, prior_mode)
                    bounds[row, start : start + len(batch)] = bound.double().cpu().numpy()
        table[label] = {
            "mean": [float(v) for v in bounds.mean(axis=1)],
            "std": [float(v) for v in bounds.std(axis=1)],
            "n": len(images),
        }
    return {"k": ks, "prior_mode": prior_mode, "unit": "nats", "sets": table}


__all__ = ["bound_table"]
