"""The one contract every invertible layer follows.

A flow layer is a bijection ``f`` with a tractable Jacobian. ``forward(x)`` returns
``(z, logdet)`` where ``logdet[b] = log |det df/dx (x_b)|`` is per sample, shape ``(B,)``;
``inverse(z)`` returns ``x`` exactly (up to floating point). Composition sums log-dets, which
is the change of variables of Dinh et al. (2015) and Kingma & Dhariwal (2018):

    log p(x) = log p_z(f(x)) + sum_k log |det J_k|.

Multi-scale splits are not bijections by themselves: ``genood.flows.reshape.FactorOut`` returns the
factored-out latent and its log-density under a (conditional) prior, and
``genood.flows.multiscale.MultiScaleFlow`` collects them into ``(latents, logdet, log_pz)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from torch import Tensor, nn


class Flow(nn.Module):
    """Base class of an invertible layer: ``x -> (z, logdet)`` and an exact ``inverse``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Map ``x`` to ``z`` and return the per-sample log |det J|, shape ``(B,)``."""
        raise NotImplementedError

    def inverse(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Exact inverse of :meth:`forward`."""
        raise NotImplementedError


def zero_logdet(x: Tensor) -> Tensor:
    """A ``(B,)`` tensor of zeros matching ``x``'s batch, device and dtype (volume-preserving maps)."""
    return x.new_zeros(x.shape[0])


class Sequential(Flow):
    """Composition ``f_K o ... o f_1``; log-dets add up."""

    def __init__(self, layers: Iterable[Flow]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(x)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            z = cast(Flow, layer).inverse(z)
        return z

    def __len__(self) -> int:
        return len(self.layers)


def check_shape(x: Tensor, ndim: int, name: str) -> None:
    """Raise a clear error when ``x`` is not ``ndim``-dimensional."""
    if x.dim() != ndim:
        raise ValueError(f"{name} expects a {ndim}-D tensor, got shape {tuple(x.shape)}")


__all__ = ["Flow", "Sequential", "check_shape", "zero_logdet"]
