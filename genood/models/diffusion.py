"""A continuous-time variational diffusion model (VDM; Kingma et al. 2021) on 8-bit images.

``build("diffusion", image_shape, **hparams)``. Read for this module: the paper and the authors'
code (google-research/vdm, ``model_vdm.py``: ``VDM.__call__``, ``EncDec``, ``VDM.sample``).

The model. ``y in {0..255}^D`` is seen as ``x = y / 127.5 - 1`` (bin centres of ``[-1, 1]``,
:class:`~genood.models.discretized.DiscreteLikelihoodModel`). The forward process is
``q(z_t | x) = N(alpha_t x, sigma_t^2 I)`` with ``sigma_t^2 = sigmoid(gamma_t)``,
``alpha_t^2 = sigmoid(-gamma_t)`` and ``gamma_t`` a learned monotone schedule
(:class:`~genood.models.diffusion_net.NoiseSchedule`). A network predicts the noise,
``eps_hat(z_t, gamma_t)``. ``p(y | z_0)`` is VDM's factorised decoder: per sub-pixel, a softmax
over the 256 levels with logits ``-(z_0 / alpha_0 - x_k)^2 / (2 sigma_0^2 / alpha_0^2)``.

The bound. ``log P(y) >= reconstruction + prior + diffusion`` (nats, each ``(B,)``; the terms are
negated losses, so each adds to the bound and none is positive):

* ``reconstruction = E_{q(z_0|x)} log p(y | z_0)``;
* ``prior = -KL(q(z_1 | x) || N(0, I))`` in closed form;
* ``diffusion = -1/2 E_{t ~ U[0,1], eps} [gamma'(t) ||eps - eps_hat(z_t, gamma_t)||^2]`` in
  continuous time (``timesteps = 0``), or with ``T = timesteps`` steps
  ``-T/2 E_i [expm1(gamma(t_i) - gamma(t_i - 1/T)) ||eps - eps_hat||^2]`` (VDM eq. 13 and 17).

``schedule``: ``learned`` (VDM's monotone network, the default), ``scalar`` (a straight line with
learned end points, the authors' released CIFAR-10 config) or ``fixed``. The schedule's end points
are trained by the bound itself (its middle only changes the estimator's variance in continuous
time); VDM's variance-minimising gradient for the middle is not implemented.

It is a lower bound on the log-*mass* of the discrete data: ``log_scale = 0``, and bits/dim
``-bound / (D log 2)`` are an **upper bound** on the model's true bits/dim (in expectation over
the Monte Carlo draws). The diffusion term is a Monte Carlo estimate:

* training (``model.train()``): one ``t`` per image, spread over the batch by VDM's
  low-discrepancy ("antithetic") sampler ``t_i = (u + i / B) mod 1``, drawn from the global RNG
  (which the trainer re-seeds every step);
* scoring (``model.eval()``): ``K = score_samples`` draws per image, stratified
  ``t_k = (u + k / K) mod 1``, all drawn from a local ``torch.Generator`` seeded with
  ``score_seed`` (on the CPU, then moved), never the global RNG. Every image sees the **same** K
  timesteps and noises (common random numbers): an image's score depends on the image, the seed
  and K only, not on its batch, its position or the device, and two data sets are compared
  under identical draws. ``score_batch`` bounds the images x draws per network pass.

A non-finite bound while scoring raises :class:`FloatingPointError` naming the timestep; while
training the trainer's non-finite guard skips the step. Sampling is VDM's ancestral sampler over
``sample_steps`` steps from ``z_1 ~ N(0, I)``, then ``y ~ p(y | z_0)``.

Scoring settings (``score_samples``, ``score_batch``, ``score_seed``, ``sample_steps`` and
``timesteps``, which picks the bound) leave the parameters unchanged: ``genood score --hparam``
may change them, and :meth:`DiffusionModel.describe` records them in every score file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genood.models.diffusion_net import NoiseSchedule, NoiseUNet
from genood.models.discretized import NUM_BINS, DiscreteLikelihoodModel
from genood.models.hparams import check_choice, check_positive, parse_hparams
from genood.models.registry import register

SCHEDULES = ("learned", "scalar", "fixed")
TERMS = ("reconstruction", "prior", "diffusion")
WINDOW_STDS = 12.0  # the reconstruction softmax keeps the levels within 12 std of z_0 / alpha_0


@dataclass(frozen=True)
class DiffusionHparams:
    """The diffusion model's hyper-parameters (VDM's CIFAR-10 values where they apply)."""

    hidden: int = 32
    levels: int = 2
    blocks: int = 1
    fourier_features: bool = True
    dropout: float = 0.0
    schedule: str = "learned"
    schedule_features: int = 1024
    gamma_min: float = -13.3
    gamma_max: float = 5.0
    # scoring and sampling settings: they change no parameter
    timesteps: int = 0
    score_samples: int = 16
    score_batch: int = 256
    score_seed: int = 0
    sample_steps: int = 256


# Settings that select how the bound is estimated or samples are drawn, not the parameters.
SCORING_SETTINGS = ("timesteps", "score_samples", "score_batch", "score_seed", "sample_steps")


def check_image_shape(image_shape: tuple[int, int, int], levels: int) -> None:
    """Refuse ``H x W`` that ``levels`` stride-2 down-samplings cannot halve exactly."""
    _, height, width = image_shape
    factor = 2**levels
    if height % factor or width % factor:
        works = ", ".join(str(factor * k) for k in range(1, 9))
        raise ValueError(
            f"diffusion with levels={levels} needs H and W divisible by {factor}, got "
            f"{height}x{width}: sizes that work are {works}, ... (pad the images with "
            f"data.pad_to, or set levels to one that divides them: "
            f"{[lv for lv in range(levels + 1) if height % 2**lv == 0 and width % 2**lv == 0]})"
        )


class DiffusionModel(DiscreteLikelihoodModel):
    """Variational diffusion model over 8-bit images; see the module docstring for the bound.

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` divisible by ``2 ** hp.levels``.
        hp: the hyper-parameters.
    """

    is_bound = True

    def __init__(self, image_shape: tuple[int, int, int], hp: DiffusionHparams) -> None:
        super().__init__(image_shape)
        check_positive(
            "diffusion",
            hidden=hp.hidden,
            blocks=hp.blocks,
            schedule_features=hp.schedule_features,
            score_samples=hp.score_samples,
            score_batch=hp.score_batch,
            sample_steps=hp.sample_steps,
        )
        check_choice("diffusion", "schedule", hp.schedule, SCHEDULES)
        if hp.levels < 0 or hp.timesteps < 0 or not 0.0 <= hp.dropout < 1.0:
            raise ValueError(
                f"diffusion: need levels >= 0, timesteps >= 0 (0: continuous time) and "
                f"0 <= dropout < 1, got {hp.levels}, {hp.timesteps}, {hp.dropout}"
            )
        check_image_shape(self.image_shape, hp.levels)
        self.hp = hp
        self.gamma = NoiseSchedule(hp.gamma_min, hp.gamma_max, hp.schedule, hp.schedule_features)
        self.net = NoiseUNet(
            self.image_shape[0],
            hp.hidden,
            hp.levels,
            hp.blocks,
            hp.gamma_min,
            hp.gamma_max,
            hp.fourier_features,
            hp.dropout,
        )
        self.bin_values: Tensor  # the 256 levels y / 127.5 - 1, a buffer (follows the device)
        self.register_buffer("bin_values", torch.linspace(-1.0, 1.0, NUM_BINS), persistent=False)

    # ----------------------------------------------------------------- the bound's pieces
    def prior_term(self, x: Tensor) -> Tensor:
        """``-KL(q(z_1 | x) || N(0, I))`` in nats, ``(B,)``."""
        var_1 = torch.sigmoid(self.gamma(torch.ones((), device=x.device)))
        mean_sq = (1.0 - var_1) * x.float().square()
        kl = 0.5 * (mean_sq + var_1 - torch.log(var_1) - 1.0)
        return -kl.flatten(1).sum(dim=1)

    def reconstruction_term(self, x: Tensor, eps_0: Tensor) -> Tensor:
        """``log p(y | z_0)`` with ``z_0 / alpha_0 = x + s eps_0``, ``s = exp(gamma_0 / 2)``, ``(N,)``.

        The softmax over the 256 levels is summed over the levels within ``WINDOW_STDS``
        standard deviations ``s`` of ``z_0 / alpha_0`` (all 256 when ``s`` is wide): each level
        left out has a logit at least ``WINDOW_STDS^2 / 2 = 72`` nats below the nearest level's,
        so together they change the normaliser by less than ``256 e^-72``, far below float32
        resolution (a test compares with the full softmax). The true level's logit is
        ``-eps_0^2 / 2`` exactly.
        """
        g_0 = self.gamma(torch.zeros((), device=x.device))
        scale = torch.exp(0.5 * g_0)
        z = x.float() + scale * eps_0.float()
        width = WINDOW_STDS * float(scale.detach()) * 127.5  # in levels
        half = math.ceil(width) + 1 if math.isfinite(width) else NUM_BINS
        if 2 * half + 1 >= NUM_BINS:
            logits = -0.5 * ((z[..., None] - self.bin_values) / scale).square()
        else:
            nearest = torch.round((z.detach() + 1.0) * 127.5).clamp(0, NUM_BINS - 1)
            offsets = torch.arange(-half, half + 1, device=z.device, dtype=z.dtype)
            index = nearest[..., None] + offsets
            inside = (index >= 0) & (index < NUM_BINS)
            candidates = index.clamp(0, NUM_BINS - 1) / 127.5 - 1.0
            logits = -0.5 * ((z[..., None] - candidates) / scale).square()
            # levels past the edges drop out (a masked, not infinite, distance: finite gradients)
            logits = torch.where(inside, logits, -torch.inf)
        picked = -0.5 * eps_0.float().square() - torch.logsumexp(logits, dim=-1)
        return picked.flatten(1).sum(dim=1)

    def diffusion_term(self, x: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """The diffusion term's one-draw estimate at times ``t`` (``(N,)``), nats, ``(N,)``."""
        g_t = self.gamma(t)
        var_t = torch.sigmoid(g_t)[:, None, None, None]
        z_t = torch.sqrt(1.0 - var_t) * x.float() + torch.sqrt(var_t) * eps.float()
        eps_hat = self.net(z_t.to(x.dtype), g_t)
        mse = (eps.float() - eps_hat.float()).square().flatten(1).sum(dim=1)
        steps = self.hp.timesteps
        if steps == 0:
            weight = self.gamma.derivative(t)
        else:
            weight = steps * torch.expm1(g_t - self.gamma(t - 1.0 / steps))
        return -0.5 * weight * mse

    def _discretise(self, t: Tensor) -> Tensor:
        """``ceil(t T) / T`` for a discrete-time bound (at least ``1/T``); ``t`` otherwise."""
        steps = self.hp.timesteps
        if steps == 0:
            return t
        return torch.ceil(t * steps).clamp(min=1.0) / steps

    # ----------------------------------------------------------------- the contract
    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The bound's terms (nats, ``(B,)`` each, summing to the bound; see the module doc)."""
        if self.training:
            return self._train_terms(x)
        return self._score_terms(x)

    def _train_terms(self, x: Tensor) -> dict[str, Tensor]:
        batch = x.shape[0]
        u = torch.rand((), device=x.device)
        t = self._discretise(torch.remainder(u + torch.arange(batch, device=x.device) / batch, 1.0))
        eps, eps_0 = (
            torch.randn_like(x, dtype=torch.float32),
            torch.randn_like(x, dtype=torch.float32),
        )
        return {
            "reconstruction": self.reconstruction_term(x, eps_0),
            "prior": self.prior_term(x),
            "diffusion": self.diffusion_term(x, t, eps),
        }

    def score_draws(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """The ``K`` scoring draws, the same for every image: times ``(K,)`` (stratified) and
        noises ``eps``, ``eps_0`` ``(K, C, H, W)``, from a CPU generator seeded ``score_seed``."""
        k = self.hp.score_samples
        generator = torch.Generator().manual_seed(self.hp.score_seed)
        u = torch.rand((), generator=generator)
        t = self._discretise(torch.remainder(u + torch.arange(k) / k, 1.0))
        eps = torch.randn((k, *self.image_shape), generator=generator)
        eps_0 = torch.randn((k, *self.image_shape), generator=generator)
        return t.to(device), eps.to(device), eps_0.to(device)

    def _score_terms(self, x: Tensor) -> dict[str, Tensor]:
        batch = x.shape[0]
        t, eps, eps_0 = self.score_draws(x.device)
        k = len(t)
        chunk = max(1, self.hp.score_batch // batch)
        recon, diff = torch.zeros(batch, device=x.device), torch.zeros(batch, device=x.device)
        for first in range(0, k, chunk):
            n = min(chunk, k - first)
            x_rep = x.repeat(n, 1, 1, 1)  # draw-major: (n * B, C, H, W)
            t_rep = t[first : first + n].repeat_interleave(batch)
            e_rep = eps[first : first + n].repeat_interleave(batch, dim=0)
            e0_rep = eps_0[first : first + n].repeat_interleave(batch, dim=0)
            d = self.diffusion_term(x_rep, t_rep, e_rep).view(n, batch)
            r = self.reconstruction_term(x_rep, e0_rep).view(n, batch)
            self._check_finite(d, t_rep.view(n, batch), "diffusion")
            self._check_finite(r, t_rep.view(n, batch), "reconstruction")
            diff += d.sum(dim=0)
            recon += r.sum(dim=0)
        terms = {"reconstruction": recon / k, "prior": self.prior_term(x), "diffusion": diff / k}
        self._check_finite(terms["prior"][None], torch.ones(1, batch, device=x.device), "prior")
        return terms

    def _check_finite(self, values: Tensor, times: Tensor, term: str) -> None:
        """Raise ``FloatingPointError`` naming the first timestep where ``values`` is not finite."""
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            draw, image = (int(i) for i in bad.nonzero()[0])
            t = float(times[draw, image])
            gamma = float(self.gamma(torch.tensor(t, device=times.device)))
            raise FloatingPointError(
                f"diffusion model: the {term} term of the bound is {float(values[draw, image])} "
                f"for image {image} of the batch at timestep t={t:.6f} (gamma_t={gamma:.4f}); "
                "score in fp32, and check the checkpoint's parameters are finite"
            )

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """VDM's ancestral sampler over ``sample_steps`` steps, then ``y ~ p(y | z_0)``.

        ``temperature`` scales the initial ``z_1``. Returns ``x`` at bin centres,
        ``(n, C, H, W)``.
        """
        steps = self.hp.sample_steps
        z = temperature * torch.randn((n, *self.image_shape), device=self.device)
        for i in range(steps):
            t = torch.full((n,), (steps - i) / steps, device=self.device)
            g_t, g_s = self.gamma(t), self.gamma(t - 1.0 / steps)
            eps_hat = self.net(z, g_t).float()
            alpha_sq_s, alpha_sq_t = torch.sigmoid(-g_s), torch.sigmoid(-g_t)
            c = -torch.expm1(g_s - g_t)
            sigma_t = torch.sqrt(torch.sigmoid(g_t))

            def per_image(v: Tensor) -> Tensor:
                return v[:, None, None, None]

            mean = per_image(torch.sqrt(alpha_sq_s / alpha_sq_t)) * (
                z - per_image(sigma_t * c) * eps_hat
            )
            z = mean + per_image(torch.sqrt((1.0 - alpha_sq_s) * c)) * torch.randn_like(z)
        g_0 = self.gamma(torch.zeros((), device=self.device))
        z_0 = z / torch.sqrt(torch.sigmoid(-g_0))
        logits = -0.5 * ((z_0[..., None] - self.bin_values) * torch.exp(-0.5 * g_0)).square()
        index = torch.distributions.Categorical(logits=logits).sample()
        return self.bin_values[index]

    def describe(self) -> dict[str, object]:
        bound = "continuous time" if self.hp.timesteps == 0 else f"T={self.hp.timesteps} steps"
        return {
            **super().describe(),
            **dataclasses.asdict(self.hp),
            "likelihood": (
                f"lower bound (VDM, {bound}, K={self.hp.score_samples} Monte Carlo timesteps, "
                f"seed {self.hp.score_seed}); bits/dim are an upper bound on the true bits/dim"
            ),
        }


@register("diffusion")
def build_diffusion(image_shape: tuple[int, int, int], **hparams: Any) -> DiffusionModel:
    """A variational diffusion model for ``image_shape``; see :class:`DiffusionHparams`."""
    return DiffusionModel(image_shape, parse_hparams(DiffusionHparams, "diffusion", hparams))


__all__ = [
    "SCHEDULES",
    "SCORING_SETTINGS",
    "TERMS",
    "DiffusionHparams",
    "DiffusionModel",
    "build_diffusion",
    "check_image_shape",
]
