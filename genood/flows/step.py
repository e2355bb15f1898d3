"""One step of flow in Glow: ActNorm -> channel mixing -> coupling (Kingma & Dhariwal 2018, Fig. 2a)."""

from __future__ import annotations

from torch import Tensor

from genood.flows.actnorm import ActNorm
from genood.flows.base import Flow


class GlowStep(Flow):
    """``coupling(mixing(actnorm(x)))`` with the three log-dets summed.

    Args:
        actnorm: the :class:`~genood.flows.actnorm.ActNorm` layer.
        mixing: an invertible 1x1 convolution or a fixed channel permutation.
        coupling: an affine or additive coupling.

    The named parts let analyses reach the channel-mixing matrices (see
    ``FlowModel.channel_mixing_matrices``).
    """

    def __init__(self, actnorm: ActNorm, mixing: Flow, coupling: Flow) -> None:
        super().__init__()
        self.actnorm = actnorm
        self.mixing = mixing
        self.coupling = coupling

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = self.actnorm(x)
        x, ld = self.mixing(x)
        logdet = logdet + ld
        x, ld = self.coupling(x)
        return x, logdet + ld

    def inverse(self, z: Tensor) -> Tensor:
        return self.actnorm.inverse(self.mixing.inverse(self.coupling.inverse(z)))


__all__ = ["GlowStep"]
