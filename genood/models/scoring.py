"""Stream a data set through a likelihood model: per-sample bits/dim and named terms.

Scoring never holds a whole data set as float: uint8 images are converted batch by batch, under
``torch.inference_mode``, and only the per-sample results are kept.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from tqdm.auto import tqdm

from genood.models.base import LikelihoodModel

# The per-sample arrays next to a model's terms and parts: the sum, its bits/dim, the labels.
NOT_TERMS = ("bits_per_dim", "log_prob", "labels")


def term_arrays(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's terms and parts (``log_pz``, ``log_pz.1``, ``neg_kl``...) among per-sample
    scores from :func:`score_images`, without ``bits_per_dim``, ``log_prob`` and ``labels``."""
    return {name: value for name, value in scores.items() if name not in NOT_TERMS}


def score_images(
    model: LikelihoodModel,
    images: np.ndarray | torch.Tensor,
    batch_size: int = 256,
    dequantize: bool = False,
    precision: str = "fp32",
    progress: bool = False,
    desc: str = "scoring",
) -> dict[str, np.ndarray]:
    """Per-sample ``bits_per_dim``, ``log_prob``, every term of ``model.log_prob_terms`` and
    every part of ``model.log_prob_parts`` (e.g. ``log_pz.1``: not added into ``log_prob``).

    Args:
        model: any genood likelihood model; it is put in eval mode.
        images: uint8 ``(N, C, H, W)`` in the model's image shape.
        batch_size: images per forward pass.
        dequantize: use uniform noise instead of bin midpoints (midpoints are deterministic).
        precision: ``fp32`` or ``bf16`` (autocast on the model's device).
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        ``{"bits_per_dim": (N,), "log_prob": (N,), <term>: (N,), <term>.<part>: (N,) ...}`` as
        float64 numpy arrays, terms and parts in nats.
    """
    if len(images) == 0:
        raise ValueError("cannot score an empty set of images")
    model.eval()
    device = model.device
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else nullcontext()
    )
    results: dict[str, list[np.ndarray]] = {}
    starts = range(0, len(images), batch_size)
    with torch.inference_mode(), autocast:
        for start in tqdm(starts, desc=desc, disable=not progress, unit="batch", leave=False):
            chunk = images[start : start + batch_size]
            batch = (
                chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk))
            )
            x = model.preprocess(batch, dequantize=dequantize)
            terms, parts = model.log_prob_parts(x)
            log_prob = torch.stack([t.double() for t in terms.values()]).sum(dim=0)
            out = {
                "bits_per_dim": model.bits_from_log_prob(log_prob, x),
                "log_prob": log_prob,
                **{name: value.double() for name, value in {**terms, **parts}.items()},
            }
            for name, value in out.items():
                results.setdefault(name, []).append(value.detach().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in results.items()}
