"""A hierarchical VAE with top-down inference, and the ``L^{>k}`` bounds of Havtorn et al. (2021).

Generative model, ``L`` stochastic layers from the top (coarsest) down::

    p(x, z) = p(x | z_1, ..., z_L) p(z_L) prod_{i < L} p(z_i | z_{>i}),   p(z_L) = N(0, I)

Inference is top-down as in the Ladder VAE / BIVA (Sønderby et al. 2016; Maaløe et al. 2019):
a deterministic bottom-up pass computes features ``d_i`` at each resolution, and
``q(z | x) = q(z_L | x) prod_{i < L} q(z_i | z_{>i}, x)`` shares the top-down state with the
prior, so ``q(z_{>k} | x)`` is exactly the product of the layers above ``k``. Layer ``i`` is a
convolutional latent at the resolution of stage ``i`` (by default ``H / 2^i``; FashionMNIST:
14x14, 7x7, 4x4) or, for the ``dense_latents`` top layers, a vector.

The decoder is a discretised logistic mixture over 8-bit sub-pixels, or (``likelihood =
"bernoulli"``) independent Bernoulli pixels of binarised images, as Havtorn et al. train on
FashionMNIST; then bits/dim are bits per binary pixel (:mod:`genood.models.bernoulli`).
Training may weight the KLs with a warm-up and floor them with free nats
(:mod:`genood.models.kl_schedule`).

Differences from the authors' ``VAE`` model (JakobHavtorn/hvae-oodd, ``oodd/models/dvae.py``,
``oodd/layers/stages.py``, ``VaeStage``), which stay: their inference is bottom-up,
``q(z_1 | x) q(z_2 | z_1, h_1) q(z_3 | z_2, h_2)`` (``h_i`` deterministic skip features), where
ours is top-down and shares the prior's path (so for ``L^{>k}`` they also feed the posterior
*mean* of ``z_{<=k}`` to the layers above, which has no counterpart here); their blocks are
non-gated residual blocks (``"gated": false``) with transposed convolutions in the generative
path, ours pre-activation ELU blocks with nearest up-sampling.

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

from genood.data.binarize import binarize_dynamic, binarize_fixed
from genood.densities import gaussian_log_prob, sum_except_batch
from genood.models.base import check_images
from genood.models.bernoulli import BernoulliPixels
from genood.models.discretized import DiscretizedLogisticMixture
from genood.models.hparams import check_choice, parse_hparams
from genood.models.kl_schedule import floored_kl
from genood.models.layers import ResBlock, apply_weight_norm
from genood.models.registry import register
from genood.models.vae import (
    BoundHparams,
    Draws,
    LatentVariableModel,
    gaussian_kl,
    gaussian_params,
    log_mean_exp,
)


@dataclass(frozen=True)
class HVAEHparams(BoundHparams):
    """The hierarchical VAE's hyper-parameters, after the scoring settings of ``BoundHparams``.

    Attributes:
        latent_channels: channels (or units, for dense layers) of ``z_1`` (lowest) ... ``z_L``
            (top); at least one layer (Havtorn et al. use 3 on FashionMNIST: 8, 16, 8).
        hidden: channels of the deterministic paths.
        blocks: residual blocks per stage of each path.
        num_mixtures: logistic components of the decoder, per pixel (``likelihood = "logistic"``).
        likelihood: ``"logistic"`` (a discretised logistic mixture over the 256 levels) or
            ``"bernoulli"`` (binarised images, see :mod:`genood.models.bernoulli`; bits/dim are
            then bits per binary pixel).
        first_kernel: kernel size of the stem and the first stage (the authors: 5); 3 after.
        strides: stride of each stage, ``(s_1, ..., s_L)`` in 1 or 2; layer ``i`` sits at the
            resolution after ``s_1 ... s_i`` (empty: all 2; the authors: ``(2, 2, 1)``, so
            14x14, 7x7, 7x7 on 28x28 images).
        dense_latents: how many of the top layers are dense vectors (the authors: 2) instead of
            ``C x H x W`` feature maps.
        weight_norm: weight normalisation (Salimans & Kingma 2016) of every convolution and
            linear map, as the authors' ``"weightnorm": true``.
    """

    latent_channels: tuple[int, ...] = (8, 16, 8)
    hidden: int = 64
    blocks: int = 1
    num_mixtures: int = 5
    likelihood: str = "logistic"
    first_kernel: int = 3
    strides: tuple[int, ...] = ()
    dense_latents: int = 0
    weight_norm: bool = False


LIKELIHOODS = ("logistic", "bernoulli")


def strided(size: int, strides: list[int]) -> list[int]:
    """Sizes after each stage: ``ceil(s / 2)`` for stride 2 (odd kernel, ``kernel // 2``
    padding), unchanged for stride 1; the input's size first."""
    sizes = [size]
    for stride in strides:
        sizes.append((sizes[-1] + 1) // 2 if stride == 2 else sizes[-1])
    return sizes


class HierarchicalVAE(LatentVariableModel):
    """Top-down hierarchical VAE with convolutional or dense latents, and a discretised logistic
    (8-bit images) or Bernoulli (binarised images) decoder.

    With ``likelihood = "bernoulli"`` the model sees binary images: :meth:`preprocess` draws
    ``b ~ Bernoulli(y / 255)`` afresh at every training use (``dequantize=True``, from the
    trainer's step generator) and a fixed per-image draw when scoring
    (:mod:`genood.data.binarize`); ``log_prob_terms`` then sum to a bound on ``log P(b)`` and
    bits/dim are bits per binary pixel.

    Args:
        image_shape: ``(C, H, W)``.
        hp: :class:`HVAEHparams`.
    """

    family = "hvae"

    def __init__(self, image_shape: tuple[int, int, int], hp: HVAEHparams) -> None:
        super().__init__(image_shape, hp)
        latent_channels = list(hp.latent_channels)
        layers = len(latent_channels)
        strides = list(hp.strides) or [2] * layers
        if not latent_channels or min(latent_channels) < 1 or hp.hidden < 1 or hp.blocks < 0:
            raise ValueError(
                f"bad HVAE sizes: latent_channels={latent_channels}, hidden={hp.hidden}, "
                f"blocks={hp.blocks}"
            )
        if len(strides) != layers or not set(strides) <= {1, 2}:
            raise ValueError(
                f"hvae: strides must hold one stride (1 or 2) per stochastic layer "
                f"({layers}), got {list(hp.strides)}; leave it empty for all 2"
            )
        if not 0 <= hp.dense_latents <= layers or hp.first_kernel < 1 or hp.first_kernel % 2 == 0:
            raise ValueError(
                f"hvae: dense_latents must be in 0..{layers} and first_kernel odd, got "
                f"{hp.dense_latents} and {hp.first_kernel}"
            )
        check_choice("hvae", "likelihood", hp.likelihood, LIKELIHOODS)
        hidden, blocks = hp.hidden, hp.blocks
        channels, height, width = self.image_shape
        self.binarized = hp.likelihood == "bernoulli"
        self.pixels: DiscretizedLogisticMixture | BernoulliPixels = (
            BernoulliPixels(channels)
            if self.binarized
            else DiscretizedLogisticMixture(channels, hp.num_mixtures)
        )
        self.latent_channels = latent_channels
        self.dense = [i > layers - hp.dense_latents for i in range(1, layers + 1)]
        self.heights, self.widths = strided(height, strides), strided(width, strides)
        first = hp.first_kernel

        def res(n: int, kernel: int = 3) -> list[nn.Module]:
            return [ResBlock(hidden, kernel) for _ in range(n)]

        def conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)

        def head(i: int, cin: int, cout: int) -> nn.Module:  # features of layer i -> params
            if not self.dense[i - 1]:
                return conv(cin, cout)
            return nn.Sequential(
                nn.Flatten(), nn.Linear(cin * self.heights[i] * self.widths[i], cout)
            )

        def z_in(i: int, c: int) -> nn.Module:  # z_i -> a feature map of layer i
            if not self.dense[i - 1]:
                return conv(c, hidden)
            size = (hidden, self.heights[i], self.widths[i])
            return nn.Sequential(nn.Linear(c, hidden * size[1] * size[2]), nn.Unflatten(1, size))

        # bottom-up: d_i at the resolution of layer i
        self.stem = nn.Sequential(conv(channels, hidden, kernel=first), *res(blocks, first))
        self.bottom_up = nn.ModuleList(
            nn.Sequential(
                conv(hidden, hidden, stride=s, kernel=first if i == 0 else 3),
                *res(blocks, first if i == 0 else 3),
            )
            for i, s in enumerate(strides)
        )
        # top-down: index i - 1 holds layer i's modules
        self.posterior = nn.ModuleList(
            head(i, hidden if i == layers else 2 * hidden, 2 * c)
            for i, c in enumerate(latent_channels, start=1)
        )
        self.prior = nn.ModuleList(
            head(i, hidden, 2 * c) for i, c in enumerate(latent_channels[:-1], start=1)
        )
        self.z_in = nn.ModuleList(z_in(i, c) for i, c in enumerate(latent_channels, start=1))
        self.top_down = nn.ModuleList(  # up-sample into layer i (from i + 1), i = 1 .. L - 1
            nn.Sequential(conv(hidden, hidden), *res(blocks)) for _ in latent_channels[:-1]
        )
        self.merge = nn.ModuleList(nn.Sequential(*res(max(blocks, 1))) for _ in latent_channels)
        self.output = nn.Sequential(conv(hidden, hidden), *res(blocks))
        self.output_params = nn.Conv2d(hidden, self.pixels.num_params, 1)
        if hp.weight_norm:
            apply_weight_norm(self)

    # ----------------------------------------------------------------- binary images
    def preprocess(
        self, images: Tensor, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """uint8 -> model space: ``y / 127.5 - 1``, or with the Bernoulli decoder a binarisation
        in ``{0, 1}``, fresh per call when ``dequantize`` (training), fixed per image otherwise."""
        if not self.binarized:
            return super().preprocess(images, dequantize, generator)
        check_images(images, self.image_shape, f"{type(self).__name__}.preprocess")
        y = images.to(self.device, non_blocking=True)
        return binarize_dynamic(y, generator) if dequantize else binarize_fixed(y)

    def postprocess(self, x: Tensor) -> Tensor:
        """Model space -> uint8; binary images map to 0 and 255."""
        if not self.binarized:
            return super().postprocess(x)
        return (x.float() > 0.5).to(torch.uint8) * 255

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
        free_nats: float = 0.0,
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """One top-down pass: layers ``> prior_layers`` from ``q`` (needs ``features``), the
        others from the conditional prior (its mean if ``prior_mode``; std times
        ``temperature``). Returns the decoder's parameters, the analytic KL of each posterior
        layer, ``sum_i log p(z_i | .) - log q(z_i | .)`` over posterior layers, and with
        ``free_nats`` each posterior layer's floored KL (:func:`~genood.models.kl_schedule.floored_kl`)."""
        layers = self.num_latents
        kls: dict[str, Tensor] = {}
        floored: dict[str, Tensor] = {}
        device, dtype = self.device, self.output_params.weight.dtype
        log_ratio = torch.zeros(batch, device=device, dtype=dtype)
        s: Tensor | None = None
        for i in range(layers, 0, -1):
            if i == layers:
                shape: tuple[int, ...] = (batch, self.latent_channels[-1])
                if not self.dense[-1]:
                    shape = (*shape, self.heights[-1], self.widths[-1])
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
                kl = gaussian_kl(q_mean, q_std, p_mean, p_std)
                kls[f"kl_z{i}"] = sum_except_batch(kl)
                if free_nats:
                    floored[f"kl_z{i}"] = floored_kl(kl, free_nats)
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
        return params, dict(sorted(kls.items())), log_ratio, dict(sorted(floored.items()))

    def _draw(
        self,
        x: Tensor,
        samples: int,
        prior_layers: int = 0,
        prior_mode: bool = False,
        free_nats: float = 0.0,
        **_: Any,
    ) -> Draws:
        if not 0 <= prior_layers <= self.num_latents:
            raise ValueError(f"k must be in 0..{self.num_latents}, got {prior_layers}")
        batch = x.shape[0]
        features = [
            d.expand(samples, *d.shape).flatten(0, 1) for d in self._features(x)
        ]  # sample-major, as x_rep
        params, kls, log_ratio, floored = self._top_down(
            features, samples * batch, prior_layers, prior_mode=prior_mode, free_nats=free_nats
        )
        x_rep = x.expand(samples, *x.shape).flatten(0, 1)
        log_px = self.pixels.log_prob(x_rep, params).view(samples, batch)
        return Draws(
            log_px,
            {name: kl.view(samples, batch) for name, kl in kls.items()},
            log_px + log_ratio.view(samples, batch),
            {name: kl.view(samples, batch) for name, kl in floored.items()},
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
        params, _, _, _ = self._top_down(None, n, self.num_latents, temperature=temperature)
        return self.pixels.sample(params)

    def describe(self) -> dict[str, object]:
        base = super().describe()
        described = {**base, **self.hparams, "stochastic_layers": self.num_latents}
        described["likelihood"] = base["likelihood"]  # the bound; the decoder is "decoder"
        described["decoder"] = self.hparams["likelihood"]
        if self.binarized:
            described["bits_per_dim"] = "bits per binary pixel of Bernoulli(y / 255) images"
        return described


@register("hvae")
def build_hvae(image_shape: tuple[int, int, int], **hparams: Any) -> HierarchicalVAE:
    """``build("hvae", (C, H, W), latent_channels=[8, 16, 8], hidden=..., ...)``."""
    return HierarchicalVAE(image_shape, parse_hparams(HVAEHparams, "hvae", hparams))
