"""Gaussian priors of the latents: Glow's learned top prior and its conditional split priors.

Glow (openai/glow, ``learntop`` and ``split2d``) models every latent with a diagonal Gaussian:

* the top latent (after the last level) with a learned per-channel mean and log-std
  (``learntop``; a zero-initialised convolution of zeros is exactly a per-channel bias);
* each factored-out half ``z_b`` of a split with mean and log-std computed from the kept half
  ``z_a`` by a zero-initialised 3x3 convolution (the split prior).

With ``learn=False`` every prior is the standard normal. Both start as the standard normal.

For stability the log-std is soft-clamped, ``log_std = B * tanh(raw / B)`` with
``B = LOG_STD_BOUND``: the identity near 0, never beyond ``+-B``, so a prior cannot collapse onto a
latent and send the loss to ``-inf`` or its gradients to infinity. The priors run in at least
float32, also under autocast (they are cheap, and the log-density is numerically sensitive).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genood.densities import gaussian_log_prob, sum_except_batch
from genood.flows.nets import ZeroConv2d

LOG_STD_BOUND = 6.0


def soft_clamp(raw: Tensor, bound: float = LOG_STD_BOUND) -> Tensor:
    """``bound * tanh(raw / bound)``: smooth, identity near 0, within ``(-bound, bound)``."""
    return bound * torch.tanh(raw / bound)


def _at_least_float32(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _no_autocast(x: Tensor) -> torch.autocast:
    return torch.autocast(device_type=x.device.type, enabled=False)


class TopPrior(nn.Module):
    """Prior of the top latent ``(C, H, W)``: learned per-channel Gaussian or standard normal.

    Args:
        shape: ``(C, H, W)`` of the top latent.
        learn: learn a per-channel mean and log-std (Glow's ``learntop``); else ``N(0, I)``.
    """

    def __init__(self, shape: tuple[int, int, int], learn: bool = True) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.learn = learn
        channels = shape[0]
        if learn:
            self.mean = nn.Parameter(torch.zeros(1, channels, 1, 1))
            self.raw_log_std = nn.Parameter(torch.zeros(1, channels, 1, 1))
        else:
            self.register_buffer("mean", torch.zeros(1, channels, 1, 1), persistent=False)
            self.register_buffer("raw_log_std", torch.zeros(1, channels, 1, 1), persistent=False)

    def params(self) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)``, each ``(1, C, 1, 1)``."""
        return self.mean, soft_clamp(self.raw_log_std)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)`` summed per sample, ``(B,)``."""
        dtype = _at_least_float32(z)
        mean, log_std = self.params()
        return sum_except_batch(
            gaussian_log_prob(z.to(dtype), mean.to(dtype), log_std=log_std.to(dtype))
        )

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` draws at ``temperature`` times the prior's std."""
        mean, log_std = self.params()
        eps = torch.randn((n, *self.shape), device=mean.device, dtype=mean.dtype)
        return mean + eps * log_std.exp() * temperature

    def extra_repr(self) -> str:
        return f"shape={self.shape}, learn={self.learn}"


class ConditionalPrior(nn.Module):
    """Prior of a split's factored-out half ``z_b`` given the kept half ``z_a``.

    Args:
        cond_channels: channels of ``z_a``.
        channels: channels of ``z_b``.
        learn: ``mean, log_std = ZeroConv2d(z_a)`` (Glow's split prior); else ``N(0, I)``.
    """

    def __init__(self, cond_channels: int, channels: int, learn: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.learn = learn
        self.conv = ZeroConv2d(cond_channels, 2 * channels) if learn else None

    def params(self, z_a: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of ``z_b``, each ``(B, C_b, H, W)``, in at least float32."""
        dtype = _at_least_float32(z_a)
        batch, _, height, width = z_a.shape
        if self.conv is None:
            zeros = z_a.new_zeros((batch, self.channels, height, width), dtype=dtype)
            return zeros, zeros
        with _no_autocast(z_a):
            h = self.conv(z_a.to(dtype))
        # openai/glow's interleaving: even channels the mean, odd ones the log-std.
        return h[:, 0::2], soft_clamp(h[:, 1::2])

    def log_prob(self, z_b: Tensor, z_a: Tensor) -> Tensor:
        """``log p(z_b | z_a)`` summed per sample, ``(B,)``."""
        mean, log_std = self.params(z_a)
        return sum_except_batch(gaussian_log_prob(z_b.to(mean.dtype), mean, log_std=log_std))

    def sample(self, z_a: Tensor, temperature: float = 1.0) -> Tensor:
        """One draw of ``z_b`` per row of ``z_a`` at ``temperature`` times the std."""
        mean, log_std = self.params(z_a)
        return mean + torch.randn_like(mean) * log_std.exp() * temperature

    def extra_repr(self) -> str:
        return f"channels={self.channels}, learn={self.learn}"


__all__ = [
    "LOG_STD_BOUND",
    "ConditionalPrior",
    "TopPrior",
    "soft_clamp",
]
