"""Squeeze and split: the reshaping layers of the multi-scale architecture.

* :class:`Squeeze` (Dinh et al. 2017, section 3.6) trades space for channels,
  ``(C, H, W) -> (4C, H/2, W/2)``, with openai/glow's ordering: output channel
  ``4c + 2dy + dx`` holds input pixel ``(c, 2i + dy, 2j + dx)``. A permutation: log-det 0.
* :class:`FactorOut` factors out half of the channels (Glow's ``split2d``): ``z -> (z_a, z_b)`` where
  the kept half ``z_a`` (the first ``C // 2`` channels) goes on through the flow and ``z_b`` is a
  final latent, scored by a :class:`~genood.flows.priors.ConditionalPrior` ``p(z_b | z_a)``.
  ``FactorOut`` is not a bijection by itself, so it is not a :class:`~genood.flows.base.Flow`: it
  returns the factored-out latent and its log-density, and
  :class:`~genood.flows.multiscale.MultiScaleFlow` collects them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genood.flows.base import Flow, check_shape, zero_logdet
from genood.flows.priors import ConditionalPrior


def squeeze(x: Tensor, factor: int = 2) -> Tensor:
    """``(B, C, H, W) -> (B, C f^2, H/f, W/f)``; raises when ``H`` or ``W`` is not divisible."""
    check_shape(x, 4, "squeeze")
    b, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"squeeze needs H and W divisible by {factor}, got {h}x{w}")
    x = x.reshape(b, c, h // factor, factor, w // factor, factor)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * factor * factor, h // factor, w // factor)


def unsqueeze(z: Tensor, factor: int = 2) -> Tensor:
    """Inverse of :func:`squeeze`."""
    check_shape(z, 4, "unsqueeze")
    b, c, h, w = z.shape
    if c % (factor * factor):
        raise ValueError(f"unsqueeze needs channels divisible by {factor * factor}, got {c}")
    z = z.reshape(b, c // (factor * factor), factor, factor, h, w)
    return z.permute(0, 1, 4, 2, 5, 3).reshape(b, c // (factor * factor), h * factor, w * factor)


def _like(out: Tensor, x: Tensor) -> Tensor:
    # Keep channels-last inputs channels-last, so the next convolution needs no conversion.
    if (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    ):
        return out.contiguous(memory_format=torch.channels_last)
    return out


class Squeeze(Flow):
    """Space-to-channels reshape by ``factor`` (2 in Glow and RealNVP); log-det 0."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _like(squeeze(x, self.factor), x), zero_logdet(x)

    def inverse(self, z: Tensor) -> Tensor:
        return _like(unsqueeze(z, self.factor), z)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class FactorOut(nn.Module):
    """Factor out the last ``C - C // 2`` channels with a conditional prior.

    Args:
        channels: ``C`` of the input.
        learn_prior: learn ``p(z_b | z_a)`` (Glow's split prior); else ``N(0, I)``.
    """

    def __init__(self, channels: int, learn_prior: bool = True) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"FactorOut needs at least 2 channels, got {channels}")
        self.channels = channels
        self.kept_channels = channels // 2
        self.factored_channels = channels - self.kept_channels
        self.prior = ConditionalPrior(self.kept_channels, self.factored_channels, learn_prior)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``z -> (z_a, z_b, log p(z_b | z_a))`` with the log-density per sample, ``(B,)``."""
        check_shape(z, 4, "FactorOut")
        if z.shape[1] != self.channels:
            raise ValueError(f"FactorOut expects {self.channels} channels, got {z.shape[1]}")
        z_a, z_b = z.split([self.kept_channels, self.factored_channels], dim=1)
        return z_a, z_b, self.prior.log_prob(z_b, z_a)

    def inverse(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Concatenate the kept and the factored-out halves."""
        return torch.cat([z_a, z_b.to(z_a.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


__all__ = ["FactorOut", "Squeeze", "squeeze", "unsqueeze"]
