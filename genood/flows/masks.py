"""RealNVP's masked affine coupling with checkerboard and channel masks (Dinh et al. 2017).

With a binary mask ``b`` (1 = conditioning, 0 = transformed),

    z = b * x + (1 - b) * (x * exp(log_s(b * x)) + t(b * x)),
    log |det J| = sum (1 - b) * log_s(b * x).

RealNVP alternates checkerboard masks (spatial, ``(1, 1, H, W)``, before each squeeze) and
channel masks (``(1, C, 1, 1)``, after it), flipping the parity between consecutive layers so
that every variable is transformed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genood.densities import sum_except_batch
from genood.flows.base import Flow, check_shape
from genood.flows.coupling import LogScale, upcast


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """``(1, 1, H, W)`` mask, 1 where ``(i + j) % 2 == parity`` (the conditioning pixels)."""
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    i = torch.arange(height).view(-1, 1)
    j = torch.arange(width).view(1, -1)
    return ((i + j) % 2 == parity).float().view(1, 1, height, width)


def channel_mask(channels: int, parity: int = 0) -> Tensor:
    """``(1, C, 1, 1)`` mask, 1 on the first ``C // 2`` channels (parity 0) or on the rest (1)."""
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    if channels < 2:
        raise ValueError(f"a channel mask needs at least 2 channels, got {channels}")
    first = (torch.arange(channels) < channels // 2).float()
    mask = first if parity == 0 else 1.0 - first
    return mask.view(1, channels, 1, 1)


class MaskedAffineCoupling(Flow):
    """RealNVP's masked affine coupling.

    Args:
        mask: binary mask broadcastable to ``(1, C, H, W)`` (see :func:`checkerboard_mask`,
            :func:`channel_mask`); a non-persistent buffer.
        channels: ``C`` of the input.
        net: maps ``(B, C, H, W) -> (B, 2C, H, W)``: even channels the shift ``t``, odd ones the
            raw scale; zero-initialise its last layer.
        scale: ``"tanh"`` (RealNVP's ``scale * tanh(h)``) or ``"sigmoid"`` (Glow's).
    """

    mask: Tensor

    def __init__(self, mask: Tensor, channels: int, net: nn.Module, scale: str = "tanh") -> None:
        super().__init__()
        check_shape(mask, 4, "MaskedAffineCoupling mask")
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("MaskedAffineCoupling needs a binary mask")
        self.channels = channels
        self.register_buffer("mask", mask.float(), persistent=False)
        self.net = net
        self.log_scale = LogScale(scale, channels)

    def _shift_log_scale(self, x_masked: Tensor, inverse_mask: Tensor) -> tuple[Tensor, Tensor]:
        h = upcast(self.net(x_masked), x_masked)
        return h[:, 0::2] * inverse_mask, self.log_scale(h[:, 1::2]) * inverse_mask

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, 4, "MaskedAffineCoupling")
        mask = self.mask.to(x.dtype)
        x_masked = x * mask
        shift, log_s = self._shift_log_scale(x_masked, 1.0 - mask)
        z = x_masked + (1.0 - mask) * (x * log_s.exp() + shift)
        return z, sum_except_batch(log_s)

    def inverse(self, z: Tensor) -> Tensor:
        check_shape(z, 4, "MaskedAffineCoupling.inverse")
        mask = self.mask.to(z.dtype)
        z_masked = z * mask
        shift, log_s = self._shift_log_scale(z_masked, 1.0 - mask)
        return z_masked + (1.0 - mask) * ((z - shift) * (-log_s).exp())

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mask={tuple(self.mask.shape)}"


__all__ = ["MaskedAffineCoupling", "channel_mask", "checkerboard_mask"]
