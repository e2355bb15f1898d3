"""Optimiser, L2 penalty, learning-rate warm-up and gradient-norm clipping.

Glow (Kingma & Dhariwal 2018) trains with Adamax and a linear learning-rate warm-up; both, and
clipping the global gradient norm, keep the first steps of a freshly initialised flow (whose
ActNorm layers were just fitted to one batch) from producing huge updates.

The schedule is a pure function of the step, so it needs no state beyond the step and the
config: resuming with a changed ``lr`` or ``warmup_steps`` (the remedy the non-finite guard
suggests) applies the new values from the next step on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genood.config import TrainConfig

OPTIMIZERS = ("adamax", "adam")


def l2_kernels(model: nn.Module) -> list[nn.Parameter]:
    """The weights Ren et al.'s L2 penalises: kernels of convolutions (also transposed) and
    linear layers, as Keras' ``kernel_regularizer``; biases, ActNorm and the like are left out."""
    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    weights = [m.weight for m in model.modules() if isinstance(m, kinds)]
    return [w for w in weights if isinstance(w, nn.Parameter) and w.requires_grad]


def l2_decay(l2: float, dimensions: int) -> float:
    """The coupled weight decay equal to ``l2 * sum(w^2)`` nats per image on a bits/dim loss.

    The loss is ``nats / (D ln 2)``; the penalty on that scale is ``l2 / (D ln 2) * sum(w^2)``,
    whose gradient ``2 * l2 / (D ln 2) * w`` is a weight decay of ``2 * l2 / (D ln 2)``.
    """
    if dimensions < 1:
        raise ValueError(f"the loss needs at least one dimension, got {dimensions}")
    return 2.0 * l2 / (dimensions * math.log(2.0))


def build_optimizer(
    parameters: Iterable[nn.Parameter],
    config: TrainConfig,
    device: torch.device,
    kernels: Sequence[nn.Parameter] = (),
    dimensions: int = 0,
) -> torch.optim.Optimizer:
    """Adam or Adamax with the config's learning rate, weight decay and L2 penalty.

    ``kernels`` (among ``parameters``) get ``train.l2`` as :func:`l2_decay` over
    ``dimensions``, the D of the bits/dim loss; both are needed when ``train.l2 > 0``.
    On CUDA the optimiser is ``capturable``: its step counters live on the GPU, so that the
    non-finite guard can skip a step without a host synchronisation.
    """
    name = config.optimizer.lower()
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}"
        )
    if config.lr <= 0 or not math.isfinite(config.lr):
        raise ValueError(f"train.lr must be a positive number, got {config.lr}")
    kwargs: dict[str, Any] = {
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "capturable": device.type == "cuda",
    }
    params: list[Any] = list(parameters)
    if config.l2 > 0:
        if not kernels or dimensions < 1:
            raise ValueError(
                "train.l2 needs the model's convolution or linear kernels and the loss's "
                "dimensions; set train.l2=0 for a model without them"
            )
        ids = {id(p) for p in kernels}
        params = [
            {"params": [p for p in params if id(p) in ids], "l2": True},
            {"params": [p for p in params if id(p) not in ids], "l2": False},
        ]
        params[0]["weight_decay"] = config.weight_decay + l2_decay(config.l2, dimensions)
    if name == "adamax":
        return torch.optim.Adamax(params, **kwargs)
    return torch.optim.Adam(params, **kwargs)


@dataclass(frozen=True)
class WarmupSchedule:
    """Linear warm-up to the peak learning rate, then constant (as in openai/glow).

    ``lr(step) = peak * min(1, (step + 1) / warmup_steps)`` for the 0-based ``step``.
    """

    peak: float
    warmup_steps: int

    def lr(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        if self.warmup_steps <= 0:
            return self.peak
        return self.peak * min(1.0, (step + 1) / self.warmup_steps)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every parameter group's learning rate for ``step``; returns it."""
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self, step: int) -> dict[str, Any]:
        """What a checkpoint records about the schedule (informative: it is recomputed)."""
        return {
            "kind": "linear-warmup",
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "step": step,
        }


def apply_hyperparameters(
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
    dimensions: int = 0,
) -> None:
    """Adapt a loaded optimiser to this run: the config's weight decay (plus the L2 decay on a
    group marked ``"l2"``, over ``dimensions``), and step counters on the device that
    :func:`build_optimizer` chooses (a checkpoint may come from CPU or CUDA)."""
    capturable = device.type == "cuda"
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay
        if group.get("l2"):
            group["weight_decay"] += l2_decay(config.l2, dimensions)
        group["capturable"] = capturable
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if torch.is_tensor(step):
                state["step"] = step.to(param.device if capturable else "cpu", torch.float32)


def clip_gradients(parameters: Sequence[Tensor], max_norm: float) -> Tensor:
    """Clip the global gradient norm to ``max_norm`` (0: no clipping); returns the norm before.

    The norm stays a device tensor (no host sync); it is non-finite when any gradient is, which
    is what the non-finite guard checks.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if max_norm > 0:
        return nn.utils.clip_grad_norm_(parameters, max_norm, error_if_nonfinite=False)
    return nn.utils.get_total_norm(grads, error_if_nonfinite=False)
