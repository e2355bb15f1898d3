"""The KL schedules of the VAEs' training objective: a warm-up weight and free nats.

With ``kl_i`` the elementwise KL of stochastic layer ``i`` (``C_i`` channels or units), the
training loss of one image is

    -log p(x | z) + beta(t) * sum_i sum_elements max(kl_i, lambda(t) / C_i)

(JakobHavtorn/hvae-oodd, ``oodd/losses.py`` with ``FreeNats(free_nats, shared_dims=1)`` from
``oodd/variational/free_nats.py``): the free-nats budget ``lambda`` of a layer is split over its
channels, and the floor applies to every element. A dense layer of 16 units gets ``lambda / 16``
per unit (``lambda`` nats in all); a convolutional layer of ``C x H x W`` gets ``lambda / C`` per
element (``lambda H W`` nats in all: 392 for the authors' 8 x 14 x 14 layer with ``lambda = 2``).
Below its floor an element's KL has no gradient, so the posterior is free to use it.

* ``beta(t)`` (:func:`warmup_weight`) rises linearly from 0 to 1 over ``warmup_steps`` training
  passes (Sønderby et al. 2016; the authors: 200 epochs);
* ``lambda(t)`` (:func:`free_nats_at`) is ``free_nats`` for ``constant_steps`` passes, then falls
  linearly to 0 over ``anneal_steps`` passes (the authors: 2 nats, 200 + 200 epochs).

Steps count gradient-enabled training passes (one per optimiser step). The authors step both
schedules once per epoch; an epoch is ``ceil(N / batch)`` steps (469 for 60,000 images at 128).
"""

from __future__ import annotations

import torch
from torch import Tensor


def warmup_weight(passes: int, warmup_steps: int) -> float:
    """``beta`` after ``passes`` training passes: ``min(1, passes / warmup_steps)``; 1 if no warm-up."""
    if warmup_steps < 0 or passes < 0:
        raise ValueError(f"need passes >= 0 and warmup_steps >= 0, got {passes}, {warmup_steps}")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, passes / warmup_steps)


def free_nats_at(passes: int, free_nats: float, constant_steps: int, anneal_steps: int) -> float:
    """``lambda`` after ``passes`` training passes (see the module docstring); never below 0."""
    if free_nats < 0 or constant_steps < 0 or anneal_steps < 0 or passes < 0:
        raise ValueError(
            f"free nats settings must be >= 0, got free_nats={free_nats}, "
            f"constant_steps={constant_steps}, anneal_steps={anneal_steps}, passes={passes}"
        )
    if passes < constant_steps:
        return free_nats
    if anneal_steps == 0:
        return free_nats if constant_steps == 0 else 0.0
    done = (passes - constant_steps) / anneal_steps
    return max(0.0, free_nats * (1.0 - done))


def floored_kl(kl: Tensor, free_nats: float) -> Tensor:
    """``sum max(kl, free_nats / C)`` per sample, ``(B,)``, of an elementwise KL ``(B, C, ...)``."""
    if free_nats <= 0:
        return kl.flatten(1).sum(dim=1)
    floor = torch.tensor(free_nats / kl.shape[1], dtype=kl.dtype, device=kl.device)
    return torch.maximum(kl, floor).flatten(1).sum(dim=1)


__all__ = ["floored_kl", "free_nats_at", "warmup_weight"]
