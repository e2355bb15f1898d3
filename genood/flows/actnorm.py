"""Activation normalisation (Kingma & Dhariwal 2018, section 3.1).

ActNorm is a per-channel affine map ``z = x * exp(log_scale) + bias`` whose parameters are
initialised from the first training batch so that every output channel has zero mean and unit
variance (data-dependent initialisation); afterwards they are ordinary parameters. Its Jacobian
is diagonal and input-independent:

    log |det J| = H * W * sum_c log_scale_c.

Whether the layer is initialised is the ``initialized`` buffer, saved in every state dict, so
loading a trained checkpoint never re-initialises it (public Glow ports that keep the flag as a
plain Python attribute re-initialise after loading, silently destroying the model).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genood.flows.base import Flow, check_shape


class ActNorm(Flow):
    """Per-channel affine flow with data-dependent initialisation.

    Args:
        channels: number of channels ``C`` of the ``(B, C, H, W)`` input.
        scale: the initial output standard deviation (Glow's ``scale``, 1.0).
        eps: added to the batch standard deviation at initialisation.

    The layer initialises itself on its first forward pass in training mode while the
    ``initialized`` buffer is 0, then sets it to 1. A model in eval mode is never initialised
    (it stays the identity until trained). Under DDP, run one forward on an initialisation
    batch before wrapping the model so that every rank initialises identically.
    """

    initialized: Tensor

    def __init__(self, channels: int, scale: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"ActNorm needs at least one channel, got {channels}")
        self.channels = channels
        self.scale = scale
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        # Mirrors the buffer so that the hot path needs no device sync; reset on state-dict load.
        self._initialized_cache = False

    # ----------------------------------------------------------------- initialisation
    @property
    def is_initialized(self) -> bool:
        """Whether the data-dependent initialisation has happened (reads the buffer)."""
        if not self._initialized_cache:
            self._initialized_cache = bool(self.initialized.item())
        return self._initialized_cache

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set bias and log-scale so that ``forward(x)`` has zero mean, std ``scale`` per channel."""
        x = x.detach().to(torch.promote_types(x.dtype, torch.float32))
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        log_scale = torch.log(self.scale / (std + self.eps))
        self.log_scale.copy_(log_scale)
        self.bias.copy_(-mean * log_scale.exp())
        self.initialized.fill_(1)
        self._initialized_cache = True

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._initialized_cache = False  # re-read the loaded buffer on the next forward

    def _maybe_initialize(self, x: Tensor) -> None:
        if self.training and not self.is_initialized:
            self.initialize(x)

    # ----------------------------------------------------------------- the flow
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``z = x * exp(log_scale) + bias``; log-det ``H * W * sum(log_scale)`` per sample."""
        check_shape(x, 4, "ActNorm")
        self._maybe_initialize(x)
        # One fused kernel (addcmul) instead of a multiply and an add over the activations.
        z = torch.addcmul(self.bias.to(x.dtype), x, self.log_scale.exp().to(x.dtype))
        return z, self.logdet(x)

    def inverse(self, z: Tensor) -> Tensor:
        """``x = (z - bias) * exp(-log_scale)``."""
        check_shape(z, 4, "ActNorm.inverse")
        return (z - self.bias.to(z.dtype)) * (-self.log_scale).exp().to(z.dtype)

    def logdet(self, x: Tensor) -> Tensor:
        """The (input-independent) log-det, expanded to ``(B,)``, in at least float32."""
        height, width = x.shape[2], x.shape[3]
        value = self.log_scale.sum() * (height * width)
        return value.expand(x.shape[0])

    def extra_repr(self) -> str:
        return f"channels={self.channels}, scale={self.scale}"


class ActNormNet(ActNorm):
    """ActNorm used *inside* a coupling network: returns only the output, no log-det.

    Glow normalises the hidden activations of its coupling networks with ActNorm; there the
    layer need not be invertible, and it runs in the autocast dtype of its input.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        self._maybe_initialize(x)
        return torch.addcmul(self.bias.to(x.dtype), x, self.log_scale.exp().to(x.dtype))


__all__ = ["ActNorm", "ActNormNet"]
