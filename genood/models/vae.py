"""A convolutional VAE with a discretised logistic mixture decoder, and the bound machinery that
the hierarchical VAE shares.

Bounds on ``log p(x)`` (Kingma & Welling 2014; Burda et al. 2016), with ``w = p(x|z) p(z) / q(z|x)``:

* ELBO ``= E_q[log p(x|z)] - KL(q(z|x) || p(z))``: the reconstruction term is estimated by
  sampling, the KL is analytic (Gaussians);
* IWAE ``= E[log (1/K) sum_k w_k]``, ``z_k ~ q``: ``ELBO = IWAE_1 <= IWAE_K <= IWAE_{K+1} <=
  log p(x)``, all in expectation.

What ``log_prob_terms`` returns (nats, ``(B,)`` each):

* train mode: one reparameterised sample, ``{"log_px_given_z", "neg_kl"}``, summing to a
  single-sample ELBO estimate (the generic trainer's objective). With ``kl_warmup_steps > 0``
  a third term ``kl_warmup_bonus = (1 - beta) KL`` (``beta`` rising linearly from 0 to 1 over that
  many training passes, Sønderby et al. 2016) is added while ``beta < 1``, and with
  ``free_nats > 0`` a term ``free_nats_penalty = -beta (sum max(kl, floor) - KL) <= 0`` while the
  floor is above 0 (:mod:`genood.models.kl_schedule`), so that the terms sum to the training
  objective ``log p(x|z) - beta sum max(kl, floor)``; subtract both to read the ELBO.
* eval mode (scoring): ``K = iw_samples`` posterior samples; ``log_px_given_z`` is their mean and
  ``neg_kl`` the analytic term, which sum to the ELBO; with ``score_bound = "iwae"`` (default) a
  third term ``iwae_gap = IWAE_K - ELBO`` (the same ``K`` samples) makes them sum to the IWAE
  bound. Either way ``is_bound`` holds: bits/dim computed from it are an upper bound on the
  model's true bits/dim (in expectation over the sampling).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genood.densities import gaussian_log_prob
from genood.models.discretized import DiscreteLikelihoodModel, DiscretizedLogisticMixture
from genood.models.hparams import check_choice, check_positive, parse_hparams
from genood.models.kl_schedule import floored_kl, free_nats_at, warmup_weight
from genood.models.layers import ResBlock
from genood.models.registry import register

MIN_STD = 1e-3
SCORE_BOUNDS = ("elbo", "iwae")


# ----------------------------------------------------------------------------- Gaussians
def gaussian_params(raw: Tensor, dim: int = 1) -> tuple[Tensor, Tensor]:
    """Split network output into ``(mean, std)``; ``std = softplus(.) + 1e-3`` stays positive.

    Promoted to at least float32, so that log-densities and KLs summed over many latents stay
    accurate under bf16 autocast.
    """
    mean, raw_std = raw.to(torch.promote_types(raw.dtype, torch.float32)).chunk(2, dim=dim)
    return mean, F.softplus(raw_std) + MIN_STD


def gaussian_kl(mean_q: Tensor, std_q: Tensor, mean_p: Tensor, std_p: Tensor) -> Tensor:
    """Elementwise ``KL(N(mean_q, std_q^2) || N(mean_p, std_p^2))``."""
    ratio = (std_q / std_p) ** 2
    return 0.5 * (ratio + ((mean_q - mean_p) / std_p) ** 2 - 1.0 - torch.log(ratio))


def log_mean_exp(log_weights: Tensor, dim: int = 0) -> Tensor:
    """``log (1/K) sum_k exp(w_k)`` along ``dim``, stably."""
    return torch.logsumexp(log_weights, dim=dim) - math.log(log_weights.shape[dim])


# ----------------------------------------------------------------------------- shared bounds
@dataclass
class Draws:
    """Per-sample quantities of ``S`` posterior draws for a batch of ``B`` images, each ``(S, B)``.

    Attributes:
        log_px_given_z: ``log p(x | z_s)``.
        kl: analytic KL of each stochastic layer (given the sampled layers above it).
        log_weight: ``log p(x | z_s) + log p(z_s) - log q(z_s | x)``, Monte Carlo.
        kl_floored: with free nats, each layer's ``sum max(kl, floor)`` (elementwise KL floored);
            empty otherwise.
    """

    log_px_given_z: Tensor
    kl: dict[str, Tensor] = field(default_factory=dict)
    log_weight: Tensor | None = None
    kl_floored: dict[str, Tensor] = field(default_factory=dict)

    @staticmethod
    def cat(parts: list[Draws]) -> Draws:
        """Concatenate draws along the sample dimension."""
        first = parts[0]
        return Draws(
            torch.cat([p.log_px_given_z for p in parts]),
            {name: torch.cat([p.kl[name] for p in parts]) for name in first.kl},
            torch.cat([p.log_weight for p in parts]) if first.log_weight is not None else None,  # type: ignore[misc]
            {name: torch.cat([p.kl_floored[name] for p in parts]) for name in first.kl_floored},
        )


@dataclass(frozen=True)
class BoundHparams:
    """How a latent-variable model scores; none of these changes its parameters.

    Attributes:
        score_bound: ``"iwae"`` or ``"elbo"``, the bound eval-mode ``log_prob_terms`` sums to.
        iw_samples: ``K``, posterior samples per image when scoring.
        iw_batch: most images (samples x batch) per network pass while scoring; bounds memory.
        kl_warmup_steps: training passes over which the KL weight rises from 0 to 1 (0: none).
        free_nats: nats of each stochastic layer's KL that cost nothing, split over its channels
            (:mod:`genood.models.kl_schedule`; 0: none).
        free_nats_steps: training passes with the full ``free_nats``.
        free_nats_anneal_steps: training passes over which ``free_nats`` then falls to 0.
    """

    score_bound: str = "iwae"
    iw_samples: int = 100
    iw_batch: int = 4096
    kl_warmup_steps: int = 0
    free_nats: float = 0.0
    free_nats_steps: int = 0
    free_nats_anneal_steps: int = 0


BOUND_SETTINGS = frozenset(f.name for f in dataclasses.fields(BoundHparams))


class LatentVariableModel(DiscreteLikelihoodModel):
    """Base of the VAEs: ELBO / IWAE from :meth:`_draw`, and the train/eval terms contract.

    Subclasses set ``family`` (the registry name, for messages) and implement
    ``_draw(x, samples, **kw) -> Draws`` and :meth:`sample`.

    Args:
        image_shape: ``(C, H, W)``.
        hp: the scoring settings (:class:`BoundHparams`, or a subclass of it).
    """

    is_bound = True
    family = "latent-variable model"

    train_passes: Tensor

    def __init__(self, image_shape: tuple[int, int, int], hp: BoundHparams) -> None:
        super().__init__(image_shape)
        check_choice(self.family, "score_bound", hp.score_bound, SCORE_BOUNDS)
        check_positive(self.family, iw_samples=hp.iw_samples, iw_batch=hp.iw_batch)
        schedule = {
            "kl_warmup_steps": hp.kl_warmup_steps,
            "free_nats": hp.free_nats,
            "free_nats_steps": hp.free_nats_steps,
            "free_nats_anneal_steps": hp.free_nats_anneal_steps,
        }
        negative = {name: value for name, value in schedule.items() if value < 0}
        if negative:
            raise ValueError(f"{self.family}: {negative} must be >= 0")
        self.score_bound = hp.score_bound
        self.iw_samples = hp.iw_samples
        self.iw_batch = hp.iw_batch
        self.kl_warmup_steps = hp.kl_warmup_steps
        self.free_nats = hp.free_nats
        self.free_nats_steps = hp.free_nats_steps
        self.free_nats_anneal_steps = hp.free_nats_anneal_steps
        # the model-specific hyper-parameters, recorded by describe()
        self.hparams = {
            f.name: getattr(hp, f.name)
            for f in dataclasses.fields(hp)
            if f.name not in BOUND_SETTINGS
        }
        # counts gradient-enabled training passes, for the KL warm-up; saved with the weights
        self.register_buffer("train_passes", torch.zeros(1, dtype=torch.long))

    def _draw(self, x: Tensor, samples: int, **kwargs: Any) -> Draws:  # pragma: no cover
        raise NotImplementedError

    def draws(self, x: Tensor, samples: int, **kwargs: Any) -> Draws:
        """:meth:`_draw` in chunks of at most ``iw_batch`` images per pass."""
        if samples < 1:
            raise ValueError(f"need at least one posterior sample, got {samples}")
        chunk = max(1, self.iw_batch // x.shape[0])
        parts = [self._draw(x, min(chunk, samples - s), **kwargs) for s in range(0, samples, chunk)]
        return parts[0] if len(parts) == 1 else Draws.cat(parts)

    @staticmethod
    def _elbo_terms(draws: Draws) -> dict[str, Tensor]:
        terms = {"log_px_given_z": draws.log_px_given_z.mean(dim=0)}
        for name, kl in draws.kl.items():
            terms[f"neg_{name}"] = -kl.mean(dim=0)
        return terms

    def elbo_terms(self, x: Tensor, samples: int = 1) -> dict[str, Tensor]:
        """The ELBO's terms, ``log_px_given_z`` (mean over ``samples`` draws) and the negated
        KL(s), each ``(B,)``."""
        return self._elbo_terms(self.draws(x, samples))

    def elbo(self, x: Tensor, samples: int = 1) -> Tensor:
        """ELBO estimate in nats, ``(B,)``."""
        return sum(self.elbo_terms(x, samples).values())  # type: ignore[return-value]

    def iwae_bound(self, x: Tensor, k: int) -> Tensor:
        """Importance-weighted bound ``log (1/k) sum w_k`` in nats, ``(B,)`` (Burda et al.)."""
        draws = self.draws(x, k)
        return log_mean_exp(draws.log_weight)  # type: ignore[arg-type]

    def kl_weight(self) -> float:
        """The warm-up's current ``beta`` (1 once ``kl_warmup_steps`` training passes are done)."""
        return warmup_weight(int(self.train_passes.item()), self.kl_warmup_steps)

    def free_nats_now(self) -> float:
        """The free-nats budget per layer at the current training pass (0 once annealed)."""
        if self.free_nats == 0:
            return 0.0
        return free_nats_at(
            int(self.train_passes.item()),
            self.free_nats,
            self.free_nats_steps,
            self.free_nats_anneal_steps,
        )

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Train mode: one-sample ELBO terms (plus the warm-up bonus); eval mode: the scoring
        bound's terms with ``iw_samples`` draws (see the module docstring)."""
        if self.training:
            learning = torch.is_grad_enabled()
            free_nats = self.free_nats_now() if learning else 0.0
            draws = self.draws(x, 1, free_nats=free_nats)
            terms = self._elbo_terms(draws)
            if learning:
                beta = self.kl_weight()
                self.train_passes += 1
                total_kl = torch.stack([kl[0] for kl in draws.kl.values()]).sum(dim=0)
                if beta < 1.0:
                    terms["kl_warmup_bonus"] = (1.0 - beta) * total_kl
                if draws.kl_floored:
                    floored = torch.stack([kl[0] for kl in draws.kl_floored.values()]).sum(dim=0)
                    terms["free_nats_penalty"] = -beta * (floored - total_kl)
            return terms
        draws = self.draws(x, self.iw_samples)
        terms = self._elbo_terms(draws)
        if self.score_bound == "iwae":
            elbo = sum(terms.values())
            terms["iwae_gap"] = log_mean_exp(draws.log_weight) - elbo  # type: ignore[arg-type,operator]
        return terms

    def describe(self) -> dict[str, object]:
        bound = f"IWAE, K={self.iw_samples}" if self.score_bound == "iwae" else "ELBO"
        return {
            **super().describe(),
            "likelihood": f"lower bound ({bound}); bits/dim are an upper bound on the true bits/dim",
            "score_bound": self.score_bound,
            "iw_samples": self.iw_samples,
        }


# ----------------------------------------------------------------------------- the VAE
def halvings(size: int, times: int) -> list[int]:
    """Sizes after each stride-2 convolution (kernel 3, padding 1): ``ceil(s / 2)``."""
    sizes = [size]
    for _ in range(times):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


@dataclass(frozen=True)
class VAEHparams(BoundHparams):
    """The VAE's hyper-parameters, after the scoring settings of :class:`BoundHparams`.

    Attributes:
        latent_dim: dimension of ``z``.
        hidden: convolution channels.
        downsamples: stride-2 stages of the encoder (and up-sampling stages of the decoder).
        blocks: residual blocks per stage.
        num_mixtures: logistic components of the decoder, per pixel.
    """

    latent_dim: int = 32
    hidden: int = 64
    downsamples: int = 2
    blocks: int = 1
    num_mixtures: int = 5


class VAE(LatentVariableModel):
    """Convolutional VAE: ``z ~ N(0, I)`` of ``latent_dim``, ``p(x|z)`` a discretised logistic
    mixture per pixel (channel-autoregressive), ``q(z|x)`` a diagonal Gaussian.

    Encoder: 3x3 stem, then ``downsamples`` x (stride-2 conv + ``blocks`` residual blocks), then a
    linear map to ``(mean, std)``. Decoder: the mirror image, with nearest up-sampling to the
    encoder's sizes (so any ``H x W`` works), ending in the mixture parameters.

    Args:
        image_shape: ``(C, H, W)``.
        hp: :class:`VAEHparams`.
    """

    family = "vae"

    def __init__(self, image_shape: tuple[int, int, int], hp: VAEHparams) -> None:
        super().__init__(image_shape, hp)
        check_positive("vae", latent_dim=hp.latent_dim, hidden=hp.hidden)
        if hp.downsamples < 0 or hp.blocks < 0:
            raise ValueError(
                f"vae: downsamples and blocks must be >= 0, got {hp.downsamples}, {hp.blocks}"
            )
        latent_dim, hidden, downsamples, blocks = (
            hp.latent_dim,
            hp.hidden,
            hp.downsamples,
            hp.blocks,
        )
        channels, height, width = self.image_shape
        self.mixture = DiscretizedLogisticMixture(channels, hp.num_mixtures)
        self.latent_dim = latent_dim
        self.heights, self.widths = halvings(height, downsamples), halvings(width, downsamples)
        flat = hidden * self.heights[-1] * self.widths[-1]

        def stage(first: nn.Module) -> nn.Sequential:
            return nn.Sequential(first, *(ResBlock(hidden) for _ in range(blocks)))

        self.encoder = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1),
            *(stage(nn.Conv2d(hidden, hidden, 3, stride=2, padding=1)) for _ in range(downsamples)),
            nn.ELU(),
            nn.Flatten(),
            nn.Linear(flat, 2 * latent_dim),
        )
        self.decoder_in = nn.Linear(latent_dim, flat)
        self.decoder_stages = nn.ModuleList(
            stage(nn.Conv2d(hidden, hidden, 3, padding=1)) for _ in range(downsamples)
        )
        self.decoder_out = nn.Conv2d(hidden, self.mixture.num_params, 1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z|x)``'s ``(mean, std)``, each ``(B, latent_dim)``."""
        return gaussian_params(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        """Mixture parameters of ``p(x|z)``, ``(B, P, H, W)``."""
        h = self.decoder_in(z).view(z.shape[0], -1, self.heights[-1], self.widths[-1])
        for level, stage in enumerate(self.decoder_stages):
            size = (self.heights[-2 - level], self.widths[-2 - level])
            h = stage(F.interpolate(h, size=size, mode="nearest"))
        return self.decoder_out(F.elu(h))

    def _draw(self, x: Tensor, samples: int, free_nats: float = 0.0, **kwargs: Any) -> Draws:
        mean, std = self.encode(x)
        batch = x.shape[0]
        eps = torch.randn((samples, *mean.shape), device=mean.device, dtype=mean.dtype)
        z = mean + std * eps  # (S, B, Z), reparameterised
        params = self.decode(z.flatten(0, 1))
        x_rep = x.expand(samples, *x.shape).flatten(0, 1)
        log_px = self.mixture.log_prob(x_rep, params).view(samples, batch)
        log_pz = gaussian_log_prob(z, torch.zeros_like(z), std=torch.ones_like(z)).sum(dim=-1)
        log_qz = gaussian_log_prob(z, mean, std=std).sum(dim=-1)
        kl_elements = gaussian_kl(mean, std, torch.zeros_like(mean), torch.ones_like(std))
        kl = kl_elements.sum(dim=-1)
        floored = (
            {"kl": floored_kl(kl_elements, free_nats).expand(samples, batch)} if free_nats else {}
        )
        return Draws(log_px, {"kl": kl.expand(samples, batch)}, log_px + log_pz - log_qz, floored)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``z ~ N(0, temperature^2 I)``, then ``x ~ p(x|z)``; ``x`` at bin centres."""
        z = temperature * torch.randn(n, self.latent_dim, device=self.device)
        return self.mixture.sample(self.decode(z))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), **self.hparams}


@register("vae")
def build_vae(image_shape: tuple[int, int, int], **hparams: Any) -> VAE:
    """``build("vae", (C, H, W), latent_dim=..., hidden=..., iw_samples=..., ...)``."""
    return VAE(image_shape, parse_hparams(VAEHparams, "vae", hparams))
