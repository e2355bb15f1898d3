"""A hierarchical VAE with top-down inference, and the ``L^{>k}`` bounds of Havtorn et al. (2021).

Generative model, ``L`` stochastic layers from the top (coarsest) down::

    p(x, z) = p(x | z_1, ..., z_L) p(z_L) prod_{i < L} p(z_i | z_{>i}),   p(z_L) = N(0, I)

Inference is top-down as in the Ladder VAE / BIVA (Sønderby et al. 2016; Maaløe et al. 2019):
a deterministic bottom-up pass computes features ``d_i`` at each resolution, and
``q(z | x) = q(z_L | x) prod_{i < L} q(z_i | z_{>i}, x)`` shares the top-down state with the
prior, so ``q(z_{>k} | x)`` is exactly the product of the layers above ``k``. Layer ``i`` is a
convolutional latent at ``H / 2^i`` (FashionMNIST: 14x14, 7x7, 4x4).

``L^{>k}`` (Havtorn et al. 2021, eq. 6): the bound obtained when the ``k`` lowest latents are
drawn from the conditional prior instead of the approximate posterior,

    L^{>k} = E_{p(z_{<=k} | z_{>k}) q(z_{>k} | x)} [ log p(x | z) p(z_{>k}) / q(z_{>k} | x) ]
           = E[log p(x | z)] - sum_{i > k} E[KL(q(z_i | z_{>i}, x) || p(z_i | z_{>i}))],

a valid but looser lower bound on ``log p(x)`` (``L^{>0}`` is the ELBO) that only lets ``x``
speak through its high-level (semantic) latents. ``LLR^{>k} = ELBO - L^{>k}`` is large when the
low-level latents of ``x`` cannot be predicted from its high-level ones: the paper's OOD score
(higher = more anomalous), which removes the low-level statistics that make raw likelihoods fail.
The same eval/train term contract as :mod:`genood.models.vae` applies (``neg_kl_z{i}`` per layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genood.densities import gaussian_log_prob, sum_except_batch
from genood.models.discretized import DiscretizedLogisticMixture
from genood.models.hparams import parse_hparams
from genood.models.layers import ResBlock
from genood.models.registry import register
from genood.models.vae import (
    BoundHparams,
    Draws,
    LatentVariableModel,
    gaussian_kl,
    gaussian_params,
    halvings,
    log_mean_exp,
)


@dataclass(frozen=True)
class HVAEHparams(BoundHparams):
    """The hierarchical VAE's hyper-parameters, after the scoring settings of ``BoundHparams``.

    Attributes:
        latent_channels: channels of ``z_1`` (lowest, ``H/2``) ... ``z_L`` (top, ``H/2^L``);
            at least one layer (Havtorn et al. use 3 on FashionMNIST: 8, 16, 8 features).
        hidden: channels of the deterministic paths.
        blocks: residual blocks per stage of each path.
        num_mixtures: logistic components of the decoder, per pixel.
    """

    latent_channels: tuple[int, ...] = (8, 16, 8)
    hidden: int = 64
    blocks: int = 1
    num_mixtures: int = 5


class HierarchicalVAE(LatentVariableModel):
    """Top-down hierarchical VAE with convolutional latents and a discretised logistic decoder.

    Args:
        image_shape: ``(C, H, W)``.
        hp: :class:`HVAEHparams`.
    """

    family = "hvae"

    def __init__(self, image_shape: tuple[int, int, int], hp: HVAEHparams) -> None:
        super().__init__(image_shape, hp)
        latent_channels = list(hp.latent_channels)
        if not latent_channels or min(latent_channels) < 1 or hp.hidden < 1 or hp.blocks < 0:
            raise ValueError(
                f"bad HVAE sizes: latent_channels={latent_channels}, hidden={hp.hidden}, "
                f"blocks={hp.blocks}"
            )
        hidden, blocks = hp.hidden, hp.blocks
        channels, height, width = self.image_shape
        self.mixture = DiscretizedLogisticMixture(channels, hp.num_mixtures)
        self.latent_channels = latent_channels
        layers = len(latent_channels)
        self.heights, self.widths = halvings(height, layers), halvings(width, layers)

        def res(n: int) -> list[nn.Module]:
            return [ResBlock(hidden) for _ in range(n)]

        def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)

        # bottom-up: d_i at H / 2^i
        self.stem = nn.Sequential(conv(channels, hidden), *res(blocks))
        self.bottom_up = nn.ModuleList(
            nn.Sequential(conv(hidden, hidden, stride=2), *res(blocks)) for _ in range(layers)
        )
        # top-down: index i - 1 holds layer i's modules
        self.posterior = nn.ModuleList(
            conv(hidden if i == layers else 2 * hidden, 2 * c)
            for i, c in enumerate(latent_channels, start=1)
        )
        self.prior = nn.ModuleList(conv(hidden, 2 * c) for c in latent_channels[:-1])
        self.z_in = nn.ModuleList(conv(c, hidden) for c in latent_channels)
        self.top_down = nn.ModuleList(  # up-sample into layer i (from i + 1), i = 1 .. L - 1
            nn.Sequential(conv(hidden, hidden), *res(blocks)) for _ in latent_channels[:-1]
        )
        self.merge = nn.ModuleList(nn.Sequential(*res(max(blocks, 1))) for _ in latent_channels)
        self.output = nn.Sequential(conv(hidden, hidden), *res(blocks))
        self.output_params = nn.Conv2d(hidden, self.mixture.num_params, 1)

    @property
    def num_latents(self) -> int:
        """``L``, the number of stochastic layers."""
        return len(self.latent_channels)

    # ----------------------------------------------------------------- passes
    def _features(self, x: Tensor) -> list[Tensor]:
        """Bottom-up features ``[d_1, ..., d_L]``."""
        h = self.stem(x)
        features = []
        for stage in self.bottom_up:
            h = stage(h)
            features.append(h)
        return features

    def _upsample(self, s: Tensor, layer: int) -> Tensor:
        return F.interpolate(s, size=(self.heights[layer], self.widths[layer]), mode="nearest")

    def _top_down(
        self,
        features: list[Tensor] | None,
        batch: int,
        prior_layers: int,
        prior_mode: bool = False,
        temperature: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """One top-down pass: layers ``> prior_layers`` from ``q`` (needs ``features``), the
        others from the conditional prior (its mean if ``prior_mode``; std times
        ``temperature``). Returns the decoder's mixture parameters, the analytic KL of each
        posterior layer and ``sum_i log p(z_i | .) - log q(z_i | .)`` over posterior layers."""
        layers = self.num_latents
        kls: dict[str, Tensor] = {}
        device, dtype = self.device, self.output_params.weight.dtype
        log_ratio = torch.zeros(batch, device=device, dtype=dtype)
        s: Tensor | None = None
        for i in range(layers, 0, -1):
            if i == layers:
                shape = (batch, self.latent_channels[-1], self.heights[-1], self.widths[-1])
                p_mean = torch.zeros(shape, device=device, dtype=dtype)
                p_std = torch.ones(shape, device=device, dtype=dtype)
            else:
                s = self.top_down[i - 1](self._upsample(s, i))  # type: ignore[arg-type]
                p_mean, p_std = gaussian_params(self.prior[i - 1](s))
            if i > prior_layers:
                if features is None:
                    raise ValueError("posterior layers need the bottom-up features of x")
                q_in = features[i - 1] if s is None else torch.cat([s, features[i - 1]], dim=1)
                q_mean, q_std = gaussian_params(self.posterior[i - 1](q_in))
                z = q_mean + q_std * torch.randn_like(q_mean)
                kls[f"kl_z{i}"] = sum_except_batch(gaussian_kl(q_mean, q_std, p_mean, p_std))
                log_ratio = log_ratio + sum_except_batch(
                    gaussian_log_prob(z, p_mean, std=p_std)
                    - gaussian_log_prob(z, q_mean, std=q_std)
                )
            elif prior_mode:
                z = p_mean
            else:
                z = p_mean + temperature * p_std * torch.randn_like(p_mean)
            h = self.z_in[i - 1](z)
            s = self.merge[i - 1](h if s is None else s + h)
        out = self.output(self._upsample(s, 0))  # type: ignore[arg-type]
        params = self.output_params(F.elu(out))
        return params, dict(sorted(kls.items())), log_ratio

    def _draw(
        self, x: Tensor, samples: int, prior_layers: int = 0, prior_mode: bool = False, **_: Any
    ) -> Draws:
        if not 0 <= prior_layers <= self.num_latents:
            raise ValueError(f"k must be in 0..{self.num_latents}, got {prior_layers}")
        batch = x.shape[0]
        features = [
            d.expand(samples, *d.shape).flatten(0, 1) for d in self._features(x)
        ]  # sample-major, as x_rep
        params, kls, log_ratio = self._top_down(
            features, samples * batch, prior_layers, prior_mode=prior_mode
        )
        x_rep = x.expand(samples, *x.shape).flatten(0, 1)
        log_px = self.mixture.log_prob(x_rep, params).view(samples, batch)
        return Draws(
            log_px,
            {name: kl.view(samples, batch) for name, kl in kls.items()},
            log_px + log_ratio.view(samples, batch),
        )

    # ----------------------------------------------------------------- L^{>k} and LLR^{>k}
    def bound_above(self, x: Tensor, k: int, samples: int = 1, prior_mode: bool = False) -> Tensor:
        """``L^{>k}`` in nats, ``(B,)``: the ``k`` lowest latents from the conditional prior.

        Args:
            x: images in model space.
            k: 0 (the ELBO) to ``L`` (every latent from the prior).
            samples: 1: one draw, posterior layers' KLs analytic; more: the importance-weighted
                version ``log (1/S) sum_s p(x|z_s) p(z_{>k,s}) / q(z_{>k,s}|x)``.
            prior_mode: use the conditional prior's mean for the ``k`` lowest latents instead of
                a sample (what the authors' code does).
        """
        draws = self.draws(x, samples, prior_layers=k, prior_mode=prior_mode)
        if samples == 1:
            return sum(self._elbo_terms(draws).values())  # type: ignore[return-value]
        return log_mean_exp(draws.log_weight)  # type: ignore[arg-type]

    def llr(self, x: Tensor, k: int, samples: int = 1, prior_mode: bool = False) -> Tensor:
        """``LLR^{>k} = L^{>0} - L^{>k}`` in nats, ``(B,)``: higher means more anomalous."""
        if not 1 <= k <= self.num_latents:
            raise ValueError(f"LLR^{{>k}} needs k in 1..{self.num_latents}, got {k}")
        return self.bound_above(x, 0, samples) - self.bound_above(x, k, samples, prior_mode)

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """Top-down ancestral sample (prior stds times ``temperature``), then ``x ~ p(x|z)``."""
        params, _, _ = self._top_down(None, n, self.num_latents, temperature=temperature)
        return self.mixture.sample(params)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), **self.hparams, "stochastic_layers": self.num_latents}


@register("hvae")
def build_hvae(image_shape: tuple[int, int, int], **hparams: Any) -> HierarchicalVAE:
    """``build("hvae", (C, H, W), latent_channels=[8, 16, 8], hidden=..., ...)``."""
    return HierarchicalVAE(image_shape, parse_hparams(HVAEHparams, "hvae", hparams))
