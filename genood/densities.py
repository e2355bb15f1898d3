"""Per-sample sums and diagonal-Gaussian log-densities, stated once for every model family.

Flows (their priors and log-determinants) and the VAEs (prior, posterior, KL) share these:

* :data:`LOG_2PI` is ``log(2 pi)``;
* :func:`sum_except_batch` sums a ``(B, ...)`` tensor to ``(B,)``;
* :func:`gaussian_log_prob` is the *elementwise* ``log N(z; mean, sigma^2)``, with ``sigma``
  given either as ``std`` or as ``log_std``; sum it with :func:`sum_except_batch` for a
  per-sample log-density.

This module imports nothing of genood: it sits below ``flows`` and ``models``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum every dimension but the first: ``(B, ...) -> (B,)``."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def gaussian_log_prob(
    z: Tensor, mean: Tensor, *, std: Tensor | None = None, log_std: Tensor | None = None
) -> Tensor:
    """Elementwise ``log N(z; mean, sigma^2)``; pass ``sigma`` as ``std=`` or as ``log_std=``.

    Raises:
        TypeError: unless exactly one of ``std`` and ``log_std`` is given.
    """
    if (std is None) == (log_std is None):
        raise TypeError("gaussian_log_prob takes exactly one of std= and log_std=")
    if log_std is None:
        assert std is not None
        standardized = (z - mean) / std
        log_std = torch.log(std)
    else:
        standardized = (z - mean) * (-log_std).exp()
    return -0.5 * (LOG_2PI + standardized.square()) - log_std


__all__ = ["LOG_2PI", "gaussian_log_prob", "sum_except_batch"]
