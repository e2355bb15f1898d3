"""Likelihood Regret (Xiao, Yan & Amit, NeurIPS 2020) for genood's VAE.

Xiao, Yan & Amit, "Likelihood Regret: An Out-of-Distribution Detection Score For Variational
Auto-encoder" (NeurIPS 2020; code: github.com/XavierXiao/Likelihood-Regret, ``compute_LR.py``).
A VAE's amortised encoder is fitted to the training data; on an in-distribution image it is
already close to the best posterior the decoder allows, on an OOD image it is not. The score is
how much the likelihood bound rises when the posterior is optimised for that one image, the
decoder fixed:

    s(x) = LL(x; encoder fitted to x alone) - LL(x; trained encoder)     (nats, >= 0 ideally)

higher = more anomalous.

What is optimised, per test image (as ``compute_LR.py`` does):

* a **copy of the trained encoder's weights**, re-initialised from the trained encoder for every
  image, the decoder frozen; the batch is that one image;
* the objective is the one-sample negative ELBO, ``-log p(x|z) + KL(q(z|x) || N(0, I))``,
  ``z = mean + std * eps`` reparameterised (a fresh ``eps`` per step), the KL analytic;
* ``steps`` steps of Adam (``compute_LR.py``: ``--num_iter 100``, ``lr = 2e-4``,
  ``betas = (0.9, 0.999)``, ``weight_decay = 5e-5``, PyTorch's coupled L2); the defaults here
  are the same;
* the likelihood before and after is the importance-weighted bound (IWAE, Burda et al.) with
  ``K`` posterior samples; the score is ``IWAE_K(after) - IWAE_K(before)``.

Differences from the authors' code, all deliberate:

* **K**: ``compute_LR.py`` uses ``5 x 200 = 1000`` samples; the default here is ``K = 100``
  (``regret:STEPS:K`` sets it; the VAE's own scoring uses 100 on the CPU config), because each
  sample is a decoder pass and this runs on CPUs.
* **Common random numbers**: the same ``K`` draws of ``eps`` give the bound before and after
  (the authors draw afresh), so the difference carries less sampling noise, and with
  ``steps = 0`` the regret is exactly 0.
* **Seeding per image**: every random number an image uses (``steps`` optimisation draws and
  ``K`` bound draws) comes from a generator seeded by ``seed`` and the image's bytes, so an
  image's score does not depend on its batch, its position or the other images, and results are
  cached like a model pass.
* **Model**: genood's VAE (no batch norm; discretised logistic-mixture decoder; images at bin
  midpoints, ``(y + 1/2) / 256 - 1/2``), not the authors' DCGAN VAE with batch norm (used in
  eval mode) and a 256-way categorical decoder on images resized to 32x32.
* **Batching**: images are optimised together, each with its own stacked copy of the encoder's
  weights, the encoder applied per image with ``torch.func.vmap`` over ``functional_call``.
  This is the same computation as a loop over images: the encoder has no layer that mixes
  images (no batch norm), the summed loss gives each copy exactly its own image's gradient, and
  Adam (with its L2 term) acts elementwise, so every copy follows its own single-image Adam
  trajectory. Only floating-point rounding differs (``tests/ood/test_regret.py`` checks a batch
  against one image at a time).

What the paper's text says beyond the code was not verified here (its method section was not
readable offline): this module follows the released code.

Cost: for each image, ``steps`` forward and backward passes of the encoder and the decoder, and
``2 K`` decoder passes for the two bounds (the before-bound's encoder is the trained one). On
the CPU-config VAE, one core of the shared 2-core EPYC, about 1 s of wall time (0.3 CPU-seconds)
per image with its likelihood pass (docs/results.md). Only ``model='vae'`` is supported; other families are refused with the fix.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from genood.densities import gaussian_log_prob
from genood.models.base import LikelihoodModel
from genood.models.vae import VAE, gaussian_kl, gaussian_params, log_mean_exp
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats

# the authors' optimiser (compute_LR.py)
STEPS = 100
LR = 2e-4
BETAS = (0.9, 0.999)
WEIGHT_DECAY = 5e-5
SAMPLES = 100  # the authors: 1000; see the module doc


def image_generators(images: np.ndarray, seed: int) -> list[torch.Generator]:
    """One CPU generator per image, seeded by ``seed`` and the image's bytes."""
    out = []
    for image in images:
        digest = hashlib.sha256(seed.to_bytes(8, "little", signed=True))
        digest.update(np.ascontiguousarray(image).tobytes())
        value = int.from_bytes(digest.digest()[:8], "little") & (2**63 - 1)
        out.append(torch.Generator().manual_seed(value))
    return out


def _encode(model: VAE, params: dict[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``(mean, std)`` of each image ``x[i]`` under its own encoder weights ``params[.][i]``."""

    def one(weights: dict[str, Tensor], image: Tensor) -> Tensor:
        return functional_call(model.encoder, weights, (image.unsqueeze(0),)).squeeze(0)

    return gaussian_params(vmap(one)(params, x), dim=-1)


def _iwae(model: VAE, x: Tensor, mean: Tensor, std: Tensor, eps: Tensor) -> Tensor:
    """``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)``, ``z_k = mean + std eps_k``; ``(B,)``.

    ``eps``: ``(B, K, Z)``; decoded in chunks of at most ``model.iw_batch`` images.
    """
    batch, samples = eps.shape[:2]
    z = mean.unsqueeze(1) + std.unsqueeze(1) * eps  # (B, K, Z)
    log_pz = gaussian_log_prob(z, torch.zeros_like(z), std=torch.ones_like(z)).sum(-1)
    log_qz = gaussian_log_prob(z, mean.unsqueeze(1), std=std.unsqueeze(1)).sum(-1)
    chunk = max(1, model.iw_batch // batch)
    log_px = []
    for start in range(0, samples, chunk):
        part = z[:, start : start + chunk]  # (B, k, Z)
        k = part.shape[1]
        params = model.decode(part.reshape(batch * k, -1))
        x_rep = x.unsqueeze(1).expand(batch, k, *x.shape[1:]).reshape(batch * k, *x.shape[1:])
        log_px.append(model.mixture.log_prob(x_rep, params).view(batch, k))
    return log_mean_exp(torch.cat(log_px, dim=1) + log_pz - log_qz, dim=1)


def regret_batch(
    model: VAE,
    images: np.ndarray,
    *,
    steps: int = STEPS,
    lr: float = LR,
    samples: int = SAMPLES,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
    bar: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """IWAE bounds ``(before, after)``, ``(B,)`` nats each, for one batch of uint8 images.

    Every image gets its own copy of the trained encoder's weights and its own Adam state; see
    the module doc for why this equals optimising the images one at a time.
    """
    model.eval()
    device = model.device
    generators = image_generators(images, seed)
    z_dim = model.latent_dim
    eps_opt = torch.stack([torch.randn(steps, z_dim, generator=g) for g in generators])
    eps_iw = torch.stack([torch.randn(samples, z_dim, generator=g) for g in generators])
    eps_opt, eps_iw = eps_opt.to(device), eps_iw.to(device)
    x = model.preprocess(torch.from_numpy(np.ascontiguousarray(images)), dequantize=False)
    count = len(images)
    params = {
        name: p.detach().unsqueeze(0).repeat(count, *([1] * p.dim())).requires_grad_(True)
        for name, p in model.encoder.named_parameters()
    }
    with torch.no_grad():
        before = _iwae(model, x, *_encode(model, params, x), eps_iw)
    if bar is not None:
        bar.update(1)
    leaves = list(params.values())
    optimizer = torch.optim.Adam(leaves, lr=lr, betas=BETAS, weight_decay=weight_decay)
    for step in range(steps):
        mean, std = _encode(model, params, x)
        z = mean + std * eps_opt[:, step]
        log_px = model.mixture.log_prob(x, model.decode(z))
        kl = gaussian_kl(mean, std, torch.zeros_like(mean), torch.ones_like(std)).sum(-1)
        loss = (kl - log_px).sum()  # each copy's gradient is its own image's
        grads = torch.autograd.grad(loss, leaves)
        for leaf, grad in zip(leaves, grads):
            leaf.grad = grad
        optimizer.step()
        if bar is not None:
            bar.update(1)
    with torch.no_grad():
        after = _iwae(model, x, *_encode(model, params, x), eps_iw)
    if bar is not None:
        bar.update(1)
    return before.double().cpu().numpy(), after.double().cpu().numpy()


@dataclass(frozen=True, eq=False)
class RegretPass(Requirement):
    """Likelihood Regret of every image, ``model/regret.<settings>`` (with ``.before`` and
    ``.after``, the two IWAE bounds in nats)."""

    steps: int = STEPS
    lr: float = LR
    samples: int = SAMPLES
    weight_decay: float = WEIGHT_DECAY
    seed: int = 0
    batch: int = 32

    @property
    def key(self) -> str:
        return (
            f"regret.n{self.steps}.lr{self.lr:g}.k{self.samples}.wd{self.weight_decay:g}"
            f".seed{self.seed}"
        )

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        model = self.model
        assert isinstance(model, VAE)
        starts = range(0, len(images), self.batch)
        before, after = [], []
        with tqdm(
            total=len(starts) * (self.steps + 2),
            desc=f"likelihood regret ({len(images)} images, {self.steps} steps)",
            disable=not settings.progress,
            leave=False,
        ) as bar:
            for start in starts:
                b, a = regret_batch(
                    model,
                    images[start : start + self.batch],
                    steps=self.steps,
                    lr=self.lr,
                    samples=self.samples,
                    weight_decay=self.weight_decay,
                    seed=self.seed,
                    bar=bar,
                )
                before.append(b)
                after.append(a)
        lo, hi = np.concatenate(before), np.concatenate(after)
        return {self.key: hi - lo, f"{self.key}.before": lo, f"{self.key}.after": hi}


class LikelihoodRegret(Detector):
    """Likelihood Regret: ``IWAE_K`` after fitting the encoder to ``x`` alone minus before.

    Args:
        model: a VAE (``genood.models.build("vae", ...)``).
        steps: Adam steps per image (the authors: 100).
        samples: ``K``, importance samples of each bound (the authors: 1000; see the module doc).
        lr: Adam's learning rate (the authors: 2e-4).
        weight_decay: Adam's L2 term (the authors: 5e-5).
        seed: mixed with each image's bytes to seed its draws.
        batch: images optimised at once (each with its own encoder copy; memory, not results).
        store: see :class:`~genood.ood.base.Detector`.
    """

    name = "regret"
    summary = (
        "Likelihood Regret (Xiao et al. 2020): the IWAE bound after fitting a copy of the "
        "encoder to the image alone (STEPS Adam steps, default 100) minus before, K samples "
        "(default 100)"
    )
    grammar = "regret[:STEPS[:K]]"
    unit = "nats"
    model_family = "vae"

    def __init__(
        self,
        model: LikelihoodModel,
        *,
        steps: int = STEPS,
        samples: int = SAMPLES,
        lr: float = LR,
        weight_decay: float = WEIGHT_DECAY,
        seed: int = 0,
        batch: int = 32,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if not isinstance(model, VAE):
            raise TypeError(
                f"the regret score needs a VAE (model 'vae'; e.g. genood train --config "
                f"configs/vae-fashion-mnist-cpu.toml), got {type(model).__name__}, which has "
                "no encoder to fit per image"
            )
        if steps < 0 or samples < 1 or batch < 1:
            raise ValueError(
                f"regret needs steps >= 0, samples >= 1 and batch >= 1, got {steps}, "
                f"{samples}, {batch}"
            )
        if not (lr > 0 and math.isfinite(lr)) or weight_decay < 0:
            raise ValueError(f"regret needs lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        self.model = model
        self.steps = int(steps)
        self.samples = int(samples)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)
        self.batch = int(batch)

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        if len(options) > 2 or not all(o.isdigit() for o in options):
            raise ValueError(
                "regret takes regret, regret:STEPS or regret:STEPS:K with whole numbers "
                "STEPS >= 0 and K >= 1, got " + ":".join([cls.name, *options])
            )
        found: dict[str, Any] = {}
        if options:
            found["steps"] = int(options[0])
        if len(options) > 1:
            if int(options[1]) < 1:
                raise ValueError(f"regret's K must be >= 1, got {':'.join([cls.name, *options])}")
            found["samples"] = int(options[1])
        return found

    def _pass(self) -> RegretPass:
        return RegretPass(
            "model",
            self.model,
            self.steps,
            self.lr,
            self.samples,
            self.weight_decay,
            self.seed,
            self.batch,
        )

    def requirements(self) -> list[Requirement]:
        return [self._pass()]

    def _score(self, stats: Stats) -> np.ndarray:
        return self.stat(stats, f"model/{self._pass().key}")
