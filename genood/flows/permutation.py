"""Channel mixing: invertible 1x1 convolutions and fixed permutations.

Glow (Kingma & Dhariwal 2018, section 3.2) mixes channels between couplings with a learned
invertible 1x1 convolution ``z[:, :, i, j] = W x[:, :, i, j]``, whose log-det is
``H * W * log |det W|``. Two parameterisations:

* plain: ``W`` is a free matrix and ``log |det W|`` comes from ``slogdet`` (O(C^3));
* LU (Glow's default): ``W = P L (U + diag(sign(s) * exp(log_s)))`` with a fixed permutation
  ``P``, unit lower-triangular ``L`` and strictly upper-triangular ``U``, so that
  ``log |det W| = sum(log_s)`` (O(C)).

RealNVP-style fixed permutations (reverse, random shuffle) have log-det 0.

The weight (and its inverse and log-det) is built once per forward pass. In eval mode under
``torch.no_grad``/``inference_mode`` it is cached, keyed on the parameters' version counters,
device and dtype, so scoring and sampling do not rebuild it; ``train()`` clears the cache.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genood.flows.base import Flow, check_shape, zero_logdet


def random_orthogonal(channels: int, generator: torch.Generator | None = None) -> Tensor:
    """A random ``(C, C)`` rotation-or-reflection (Glow's initialisation of ``W``)."""
    q, _ = torch.linalg.qr(
        torch.randn(channels, channels, generator=generator, dtype=torch.float64)
    )
    return q.float()


def _no_autocast(x: Tensor) -> torch.autocast:
    # Channel mixing sits on the flow's main stream: in bf16 it would break exact invertibility.
    return torch.autocast(device_type=x.device.type, enabled=False)


class _CachedWeight(Flow):
    """Shared machinery: build ``(W, log|det W|)`` once per pass, cache it when frozen."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"an invertible 1x1 convolution needs channels >= 1, got {channels}")
        self.channels = channels
        self._cache: dict[str, Any] = {}

    def build(self) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Return ``(W, log |det W|)`` with ``W`` of shape ``(C, C)``."""
        raise NotImplementedError

    def _cache_key(self) -> tuple[Any, ...]:
        return (
            torch.is_inference_mode_enabled(),
            *((p._version, p.data_ptr(), p.dtype, p.device) for p in self.parameters()),
        )

    def _cacheable(self) -> bool:
        return (
            not self.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        )

    def _get(self, name: str) -> Tensor:
        """``weight``, ``logdet`` or ``inverse``, cached while the layer is frozen."""
        if not self._cacheable():
            weight, logdet = self.build()
            if name == "inverse":
                return _inverse(weight)
            return weight if name == "weight" else logdet
        key = self._cache_key()
        if self._cache.get("key") != key:
            weight, logdet = self.build()
            self._cache = {"key": key, "weight": weight, "logdet": logdet}
        if name == "inverse" and "inverse" not in self._cache:
            self._cache["inverse"] = _inverse(self._cache["weight"])
        return self._cache[name]

    def train(self, mode: bool = True) -> _CachedWeight:
        self._cache = {}
        return super().train(mode)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``z = W x`` at every pixel; log-det ``H * W * log |det W|``."""
        check_shape(x, 4, type(self).__name__)
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.channels} channels, got {x.shape[1]}"
            )
        with _no_autocast(x):
            weight = self._get("weight")
            z = F.conv2d(x, weight.to(x.dtype).view(self.channels, self.channels, 1, 1))
            logdet = self._get("logdet") * (x.shape[2] * x.shape[3])
        return z, logdet.expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        """``x = W^{-1} z`` at every pixel."""
        check_shape(z, 4, f"{type(self).__name__}.inverse")
        with _no_autocast(z):
            weight_inv = self._get("inverse")
            return F.conv2d(z, weight_inv.to(z.dtype).view(self.channels, self.channels, 1, 1))

    @property
    def weight(self) -> Tensor:
        """The current ``(C, C)`` weight ``W`` (differentiable)."""
        return self.build()[0]

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def _inverse(weight: Tensor) -> Tensor:
    # float64 for the tiny C x C inverse: the round trip is then limited by the convolutions.
    return torch.linalg.inv(weight.double()).to(weight.dtype)


class InvertibleConv1x1(_CachedWeight):
    """Glow's invertible 1x1 convolution with a free weight matrix (``slogdet`` log-det).

    Args:
        channels: ``C``.
        generator: RNG for the random orthogonal initialisation.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__(channels)
        self.weight_matrix = nn.Parameter(random_orthogonal(channels, generator))

    def build(self) -> tuple[Tensor, Tensor]:
        w = self.weight_matrix
        # slogdet in float64: cheap for C x C and exact enough to compare with brute force.
        logdet = torch.linalg.slogdet(w.double())[1].to(w.dtype)
        return w, logdet


class LUInvertibleConv1x1(_CachedWeight):
    """Glow's LU-decomposed invertible 1x1 convolution (the default in openai/glow).

    ``W = P @ (L + I) @ (U + diag(sign_s * exp(log_s)))`` with ``P`` and ``sign_s`` fixed
    buffers taken from the LU decomposition of a random rotation, ``L`` strictly lower and ``U``
    strictly upper triangular; ``log |det W| = sum(log_s)``.
    """

    perm: Tensor
    sign_s: Tensor
    lower_mask: Tensor
    eye: Tensor

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__(channels)
        w0 = random_orthogonal(channels, generator).double()
        p, lower, upper = torch.linalg.lu(w0)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def build(self) -> tuple[Tensor, Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        weight = self.perm @ (lower @ upper)
        return weight, self.log_s.sum()


class ChannelPermutation(Flow):
    """A fixed channel permutation (RealNVP's reversal or a random shuffle); log-det 0.

    Args:
        channels: ``C``.
        kind: ``"reverse"`` or ``"shuffle"``.
        generator: RNG for ``"shuffle"``; the permutation is a buffer, so it is saved.
    """

    perm: Tensor
    inverse_perm: Tensor

    def __init__(
        self, channels: int, kind: str = "reverse", generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if kind == "reverse":
            perm = torch.arange(channels - 1, -1, -1)
        elif kind == "shuffle":
            perm = torch.randperm(channels, generator=generator)
        else:
            raise ValueError(f"unknown permutation kind {kind!r}; expected 'reverse' or 'shuffle'")
        self.kind = kind
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, 4, "ChannelPermutation")
        return x[:, self.perm], zero_logdet(x)

    def inverse(self, z: Tensor) -> Tensor:
        check_shape(z, 4, "ChannelPermutation.inverse")
        return z[:, self.inverse_perm]

    def extra_repr(self) -> str:
        return f"channels={len(self.perm)}, kind={self.kind!r}"


__all__ = [
    "ChannelPermutation",
    "InvertibleConv1x1",
    "LUInvertibleConv1x1",
    "random_orthogonal",
]
