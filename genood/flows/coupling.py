"""Affine and additive coupling layers over a channel split (Dinh et al. 2015, 2017; Glow).

The input is split along channels into a conditioning half ``x_a`` (the first ``C // 2``
channels, or the last ones with ``swap=True``) and a transformed half ``x_b``; a network sees
only ``x_a``, so the Jacobian is triangular:

* affine (Glow, Kingma & Dhariwal 2018, section 3.3):
  ``z_b = (x_b + t(x_a)) * s(x_a)``, ``log |det J| = sum log s(x_a)``;
* additive (NICE, Dinh et al. 2015): ``z_b = x_b + t(x_a)``, ``log |det J| = 0``.

Scale functions for the affine coupling:

* ``"sigmoid"`` (Glow): ``s = sigmoid(h + 2) / sigmoid(2)``. The ``+ 2`` keeps ``s`` near 1 and
  bounded, which is what makes Glow training stable; dividing by the constant ``sigmoid(2)``
  makes a zero-initialised coupling exactly the identity (Glow's ActNorm otherwise absorbs that
  constant), and bounds ``s`` by ``1 / sigmoid(2) ~ 1.135``. ``log s`` is computed with
  ``F.logsigmoid`` (stable for every ``h``).
* ``"tanh"`` (RealNVP): ``log s = scale_c * tanh(h)`` with a learned per-channel ``scale_c``.

The network's last layer is zero-initialised, so a new coupling is the identity. Network outputs
are cast back to the flow's dtype, so under bf16 autocast only the network runs in bf16 while the
transformed half, the scale and the log-det stay in float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genood.densities import sum_except_batch
from genood.flows.base import Flow, check_shape, zero_logdet

LOG_SIGMOID_2 = math.log(1.0 / (1.0 + math.exp(-2.0)))
SCALE_FUNCTIONS = ("sigmoid", "tanh")


def upcast(t: Tensor, like: Tensor) -> Tensor:
    """``t`` in ``like``'s dtype (undoes autocast's bf16/fp16 on network outputs)."""
    return t if t.dtype == like.dtype else t.to(like.dtype)


class LogScale(nn.Module):
    """Maps a raw network output ``h`` to ``log s`` for :class:`AffineCoupling`.

    Args:
        kind: ``"sigmoid"`` (Glow) or ``"tanh"`` (RealNVP).
        channels: channels of ``h`` (the learned ``tanh`` scale is per channel).
    """

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in SCALE_FUNCTIONS:
            raise ValueError(f"unknown scale function {kind!r}; expected one of {SCALE_FUNCTIONS}")
        self.kind = kind
        if kind == "tanh":
            self.tanh_scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, h: Tensor) -> Tensor:
        if self.kind == "sigmoid":
            return F.logsigmoid(h + 2.0) - LOG_SIGMOID_2
        return self.tanh_scale.to(h.dtype) * torch.tanh(h)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


class _ChannelCoupling(Flow):
    """Shared channel split of the coupling layers."""

    def __init__(self, channels: int, swap: bool) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(
                f"a channel coupling needs at least 2 channels, got {channels}; squeeze first "
                "or use a checkerboard coupling (genood.flows.masks)"
            )
        self.channels = channels
        self.swap = swap
        # The conditioning half: the first C // 2 channels (or the last C // 2 when swapped).
        self.cond_channels = channels // 2
        self.transformed_channels = channels - self.cond_channels

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (x_a, x_b)``: the conditioning and the transformed half."""
        check_shape(x, 4, type(self).__name__)
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.channels} channels, got {x.shape[1]}"
            )
        if self.swap:
            x_b, x_a = x.split([self.transformed_channels, self.cond_channels], dim=1)
        else:
            x_a, x_b = x.split([self.cond_channels, self.transformed_channels], dim=1)
        return x_a, x_b

    def merge(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        return torch.cat([x_b, x_a] if self.swap else [x_a, x_b], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, swap={self.swap}"


class AffineCoupling(_ChannelCoupling):
    """Affine coupling ``z_b = (x_b + t(x_a)) * s(x_a)``.

    Args:
        channels: ``C`` of the input.
        net: maps ``(B, C_a, H, W) -> (B, 2 * C_b, H, W)``; even output channels are the shift
            ``t``, odd ones the raw scale (openai/glow's interleaving). Zero-initialise its last
            layer (e.g. :class:`genood.flows.nets.GlowCouplingNet`).
        scale: ``"sigmoid"`` (Glow) or ``"tanh"`` (RealNVP); see the module doc.
        swap: condition on the last half instead of the first.
    """

    def __init__(
        self, channels: int, net: nn.Module, scale: str = "sigmoid", swap: bool = False
    ) -> None:
        super().__init__(channels, swap)
        self.net = net
        self.log_scale = LogScale(scale, self.transformed_channels)

    def _shift_log_scale(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        h = upcast(self.net(x_a), x_a)
        return h[:, 0::2], self.log_scale(h[:, 1::2])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_a, x_b = self.split(x)
        shift, log_s = self._shift_log_scale(x_a)
        z_b = (x_b + shift) * log_s.exp()
        return self.merge(x_a, z_b), sum_except_batch(log_s)

    def inverse(self, z: Tensor) -> Tensor:
        z_a, z_b = self.split(z)
        shift, log_s = self._shift_log_scale(z_a)
        x_b = z_b * (-log_s).exp() - shift
        return self.merge(z_a, x_b)


class AdditiveCoupling(_ChannelCoupling):
    """Additive (volume-preserving) coupling ``z_b = x_b + t(x_a)``; log-det 0.

    Args:
        channels: ``C`` of the input.
        net: maps ``(B, C_a, H, W) -> (B, C_b, H, W)``, zero-initialised last layer.
        swap: condition on the last half instead of the first.
    """

    def __init__(self, channels: int, net: nn.Module, swap: bool = False) -> None:
        super().__init__(channels, swap)
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_a, x_b = self.split(x)
        z_b = x_b + upcast(self.net(x_a), x_a)
        return self.merge(x_a, z_b), zero_logdet(x)

    def inverse(self, z: Tensor) -> Tensor:
        z_a, z_b = self.split(z)
        return self.merge(z_a, z_b - upcast(self.net(z_a), z_a))


__all__ = ["AdditiveCoupling", "AffineCoupling", "LogScale", "upcast"]
