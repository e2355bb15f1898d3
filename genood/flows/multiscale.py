"""The multi-scale architecture (Dinh et al. 2017, section 3.6; Kingma & Dhariwal 2018, Fig. 2).

``L`` levels; level ``i`` is an invertible flow (for Glow: squeeze, then ``K`` steps of ActNorm,
1x1 convolution and coupling). After every level but the last, :class:`~genood.flows.reshape.FactorOut`
factors out half of the channels as a final latent ``z_i`` with a prior conditioned on the kept
half; the last level's output is the top latent ``z_L`` with its own prior. Then

    log p(x) = sum_i log p(z_i | kept_i) + log p(z_L)  +  sum_levels log |det J|
             = log_pz                                   +  logdet.

``log_pz`` is the distribution term and ``logdet`` the volume term of Nalisnick et al. (2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from genood.flows.base import Flow, zero_logdet
from genood.flows.priors import TopPrior
from genood.flows.reshape import FactorOut

Shape = tuple[int, int, int]


class FlowOutput(NamedTuple):
    """What :meth:`MultiScaleFlow.forward` returns.

    Attributes:
        latents: the factored-out latents in order (level 1's first, the top latent last).
        logdet: the volume term ``sum log |det J|``, ``(B,)``.
        log_pz: the distribution term ``sum log p(z_i | ...)``, ``(B,)``.
        level_log_pz: its parts, ``log p(z_i | kept_i)`` for each factored-out latent and
            ``log p(z_L)`` last, each ``(B,)``; they sum to ``log_pz``.
    """

    latents: list[Tensor]
    logdet: Tensor
    log_pz: Tensor
    level_log_pz: list[Tensor]


class MultiScaleFlow(nn.Module):
    """``L`` invertible levels with a split (and split prior) between consecutive levels.

    Args:
        input_shape: ``(C, H, W)`` of ``x``.
        levels: the ``L`` level flows, in order.
        level_shapes: the output shape ``(C_i, H_i, W_i)`` of each level; level ``i + 1`` must
            take the first ``C_i // 2`` channels (the kept half of the split).
        learn_prior: learned top and split priors (Glow) or standard normal ones.
    """

    def __init__(
        self,
        input_shape: Shape,
        levels: Sequence[Flow],
        level_shapes: Sequence[Shape],
        learn_prior: bool = True,
    ) -> None:
        super().__init__()
        if len(levels) != len(level_shapes) or not levels:
            raise ValueError("MultiScaleFlow needs one output shape per level, and >= 1 level")
        self.input_shape = tuple(input_shape)
        self.levels = nn.ModuleList(levels)
        self.level_shapes: list[Shape] = [(s[0], s[1], s[2]) for s in level_shapes]
        self.splits = nn.ModuleList(
            FactorOut(shape[0], learn_prior) for shape in self.level_shapes[:-1]
        )
        self.top_prior = TopPrior(self.level_shapes[-1], learn_prior)
        self.latent_shapes: list[Shape] = [
            (self._split(i).factored_channels, shape[1], shape[2])
            for i, shape in enumerate(self.level_shapes[:-1])
        ] + [self.level_shapes[-1]]
        total = sum(c * h * w for c, h, w in self.latent_shapes)
        expected = input_shape[0] * input_shape[1] * input_shape[2]
        if total != expected:
            raise ValueError(f"latents hold {total} dimensions but the input has {expected}")

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def forward(self, x: Tensor) -> FlowOutput:
        """``x -> (latents, logdet, log_pz)``."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected inputs of shape (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        logdet = zero_logdet(x)
        latents: list[Tensor] = []
        level_log_pz: list[Tensor] = []
        h = x
        for i, level in enumerate(self.levels):
            h, level_logdet = level(h)
            logdet = logdet + level_logdet
            if i < len(self.splits):
                h, z, split_log_pz = self.splits[i](h)
                latents.append(z)
                level_log_pz.append(split_log_pz)
        latents.append(h)
        level_log_pz.append(self.top_prior.log_prob(h))
        log_pz = zero_logdet(x)
        for part in level_log_pz:
            log_pz = log_pz + part
        return FlowOutput(latents, logdet, log_pz, level_log_pz)

    def _level(self, i: int) -> Flow:
        return cast(Flow, self.levels[i])

    def _split(self, i: int) -> FactorOut:
        return cast(FactorOut, self.splits[i])

    def inverse(self, latents: Sequence[Tensor]) -> Tensor:
        """The exact inverse: latents in the order :meth:`forward` returns them -> ``x``."""
        if len(latents) != len(self.latent_shapes):
            raise ValueError(f"expected {len(self.latent_shapes)} latents, got {len(latents)}")
        h = latents[-1]
        for i in reversed(range(self.num_levels)):
            if i < len(self.splits):
                h = self._split(i).inverse(h, latents[i])
            h = self._level(i).inverse(h)
        return h

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """Ancestral sampling: top latent, then each split's ``z_b | z_a``, at ``temperature``."""
        h = self.top_prior.sample(n, temperature)
        for i in reversed(range(self.num_levels)):
            if i < len(self.splits):
                z = self._split(i).prior.sample(h, temperature)
                h = self._split(i).inverse(h, z)
            h = self._level(i).inverse(h)
        return h

    def prior_params(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each latent's prior ``(mean, log_std)`` at ``x``, shaped like the latents.

        The split priors depend on ``x`` through the kept halves; the top prior does not.
        """
        params: list[tuple[Tensor, Tensor]] = []
        h = x
        for i, level in enumerate(self.levels):
            h, _ = level(h)
            if i < len(self.splits):
                h = h[:, : self._split(i).kept_channels]
                params.append(self._split(i).prior.params(h))
        mean, log_std = self.top_prior.params()
        top_shape = (x.shape[0], *self.latent_shapes[-1])
        params.append((mean.expand(top_shape), log_std.expand(top_shape)))
        return params

    # ----------------------------------------------------------------- flat latents
    def flatten(self, latents: Sequence[Tensor]) -> Tensor:
        """Concatenate the latents, each flattened, into ``(B, D)``."""
        return torch.cat([z.reshape(z.shape[0], -1) for z in latents], dim=1)

    def unflatten(self, z: Tensor) -> list[Tensor]:
        """Inverse of :meth:`flatten`: ``(B, D)`` -> the latents in their shapes."""
        sizes = [c * h * w for c, h, w in self.latent_shapes]
        if z.dim() != 2 or z.shape[1] != sum(sizes):
            raise ValueError(f"expected latents of shape (B, {sum(sizes)}), got {tuple(z.shape)}")
        parts = z.split(sizes, dim=1)
        return [p.reshape(z.shape[0], *shape) for p, shape in zip(parts, self.latent_shapes)]


__all__ = ["FlowOutput", "MultiScaleFlow"]
