"""Per-image statistics of a diffusion model that OOD detectors read (higher = more anomalous).

Two published detectors, computed with the deterministic DDIM map of a
:class:`~genood.models.diffusion.DiffusionModel` (the probability-flow ODE discretised with its
own noise prediction: ``x_hat = (z_t - sigma_t eps_hat) / alpha_t``, then
``z_s = alpha_s x_hat + sigma_s eps_hat``):

* **Reconstruction over several noise levels** (Graham et al. 2023, "Denoising diffusion models
  for out-of-distribution detection"; read in the authors' code, marksgraham/ddpm-ood,
  ``src/trainers/reconstruct.py`` and ``ood_detection.py``): noise the image to each starting
  time ``t`` in ``levels``, denoise it deterministically back to ``t = 0`` with a number of steps
  proportional to ``t`` (the authors: a PNDM sampler over 100 steps of a 1000-step DDPM, starting
  from every few of them), and measure the error. :func:`reconstruction_errors` gives the mean
  squared error per image and level (pixels on ``[0, 1]``); :func:`zscore_score` is the authors'
  score: each level's error z-scored against in-distribution reference images, averaged over
  the levels. The authors add an LPIPS term (a pretrained VGG), which genood does not ship: this
  is their MSE-only variant. Levels here are times of the model's own schedule, not DDPM steps.
* **Path statistics of the probability-flow ODE** (Heng et al. 2024, DiffPath; read in the
  authors' code, clear-nus/diffpath, ``save_test_statistics.py`` and ``eval_1d.py``): encode the
  image with DDIM from ``t = 0`` to ``t = 1`` in ``steps`` steps, keeping the noise predictions
  ``eps_i`` (the ODE's rate of change up to schedule factors). :func:`path_statistics` gives
  ``rate = sqrt(sum_i |eps_i|^2)`` (their ``eps_sum_sq_sqrt``) and
  ``curvature = sqrt(sum_i |steps (eps_{i+1} - eps_i)|^2)`` (their ``deps_dt_sq_sqrt``, the
  finite-difference derivative of the rate along the path). DiffPath-1D scores the curvature by
  a kernel density fitted on training images; that step belongs to the detector.

The noise of the reconstructions comes from a local generator seeded by ``seed`` and is the same
for every image (as the bound's draws): a statistic depends on the image, the model and the
settings, not on the batch, and the global RNG is left alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from genood.models.diffusion import DiffusionModel

DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _alpha_sigma(model: DiffusionModel, t: float, device: torch.device) -> tuple[Tensor, Tensor]:
    gamma = model.gamma(torch.tensor(float(t), device=device))
    return torch.sqrt(torch.sigmoid(-gamma)), torch.sqrt(torch.sigmoid(gamma))


def _eps(model: DiffusionModel, z: Tensor, t: float) -> Tensor:
    gamma = model.gamma(torch.full((z.shape[0],), float(t), device=z.device))
    return model.net(z, gamma).float()


def ddim_step(model: DiffusionModel, z: Tensor, t: float, s: float) -> tuple[Tensor, Tensor]:
    """One deterministic DDIM step from time ``t`` to ``s`` (either direction); returns
    ``(z_s, eps_hat(z_t))``."""
    alpha_t, sigma_t = _alpha_sigma(model, t, z.device)
    alpha_s, sigma_s = _alpha_sigma(model, s, z.device)
    eps = _eps(model, z, t)
    x_hat = (z - sigma_t * eps) / alpha_t
    return alpha_s * x_hat + sigma_s * eps, eps


def reconstruct(
    model: DiffusionModel, x: Tensor, t_start: float, steps: int, noise: Tensor
) -> Tensor:
    """Noise ``x`` (model space) to ``t_start`` with ``noise`` and denoise it with ``steps``
    deterministic DDIM steps to ``t = 0``; the reconstruction, clamped to ``[-1, 1]``."""
    alpha, sigma = _alpha_sigma(model, t_start, x.device)
    z = alpha * x + sigma * noise
    times = np.linspace(t_start, 0.0, steps + 1)
    for t, s in itertools.pairwise(times):
        z, _ = ddim_step(model, z, float(t), float(s))
    alpha_0, _ = _alpha_sigma(model, 0.0, x.device)
    return (z / alpha_0).clamp(-1.0, 1.0)


def _batches(
    model: DiffusionModel, images: np.ndarray | Tensor, batch_size: int
) -> Iterator[Tensor]:
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = chunk if isinstance(chunk, Tensor) else torch.from_numpy(np.asarray(chunk))
        yield model.preprocess(batch)


def _check(levels: Sequence[float], steps: int) -> None:
    if steps < 1:
        raise ValueError(f"need at least one DDIM step, got steps={steps}")
    if not levels or any(not 0.0 < t <= 1.0 for t in levels):
        raise ValueError(f"noise levels must be times in (0, 1], got {list(levels)}")


@torch.inference_mode()
def reconstruction_errors(
    model: DiffusionModel,
    images: np.ndarray | Tensor,
    levels: Sequence[float] = DEFAULT_LEVELS,
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """Graham et al.'s per-level reconstruction errors, ``(N, len(levels))`` float64.

    Args:
        model: a trained diffusion model (put in eval mode).
        images: uint8 ``(N, C, H, W)``.
        levels: starting times ``t in (0, 1]``.
        steps: DDIM steps for the whole range: a start at ``t`` takes ``max(1, round(t steps))``.
        seed: seeds the (shared) noise of every level.
        batch_size: images per pass.

    Returns:
        The mean squared error between the image and each reconstruction, pixels on ``[0, 1]``.
    """
    _check(levels, steps)
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    noises = torch.randn((len(levels), *model.image_shape), generator=generator)
    rows = []
    for x in _batches(model, images, batch_size):
        errors = []
        for level, noise in zip(levels, noises, strict=True):
            n_steps = max(1, round(level * steps))
            x_hat = reconstruct(model, x, level, n_steps, noise.to(x.device).expand_as(x))
            errors.append(((x_hat - x) / 2.0).square().flatten(1).mean(dim=1))
        rows.append(torch.stack(errors, dim=1).double().cpu().numpy())
    return np.concatenate(rows)


def zscore_score(errors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Graham et al.'s score: each level's error z-scored with the mean and standard deviation of
    ``reference`` (in-distribution images' errors, ``(M, L)``), averaged over levels, ``(N,)``."""
    if errors.ndim != 2 or reference.ndim != 2 or errors.shape[1] != reference.shape[1]:
        raise ValueError(
            f"need (N, L) errors and (M, L) reference errors, got {errors.shape} and "
            f"{reference.shape}"
        )
    if len(reference) < 2:
        raise ValueError("z-scores need at least 2 reference images")
    std = reference.std(axis=0, ddof=1)
    return ((errors - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)).mean(axis=1)


@torch.inference_mode()
def path_statistics(
    model: DiffusionModel, images: np.ndarray | Tensor, steps: int = 10, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """DiffPath's statistics of the DDIM encoding path from ``t = 0`` to ``t = 1``.

    Returns:
        ``{"rate": (N,), "curvature": (N,)}`` float64: ``sqrt(sum_i |eps_i|^2)`` over the
        ``steps`` noise predictions, and ``sqrt(sum_i |steps (eps_{i+1} - eps_i)|^2)``.
    """
    _check([1.0], steps)
    model.eval()
    times = np.linspace(0.0, 1.0, steps + 1)
    rates, curvatures = [], []
    for x in _batches(model, images, batch_size):
        alpha_0, _ = _alpha_sigma(model, 0.0, x.device)
        z, eps_path = alpha_0 * x, []
        for t, s in itertools.pairwise(times):
            z, eps = ddim_step(model, z, float(t), float(s))
            eps_path.append(eps.flatten(1))
        path = torch.stack(eps_path, dim=1)  # (B, steps, D)
        rates.append(path.square().sum(dim=(1, 2)).sqrt())
        change = torch.diff(path, dim=1) * steps
        curvatures.append(change.square().sum(dim=(1, 2)).sqrt())
    return {
        "rate": torch.cat(rates).double().cpu().numpy(),
        "curvature": torch.cat(curvatures).double().cpu().numpy(),
    }


__all__ = [
    "DEFAULT_LEVELS",
    "ddim_step",
    "path_statistics",
    "reconstruct",
    "reconstruction_errors",
    "zscore_score",
]
