"""A flow's Jacobian Frobenius norm, estimated stochastically (Hutchinson 1990).

The map is the whole multi-scale flow of a :class:`~genood.models.flow_model.FlowModel`,

    f : x -> z = (z_1, ..., z_L),   R(x) = ||df/dx||_F^2 = sum_ij (dz_i / dx_j)^2,

from the model's input space (the preprocessed, dequantised images ``x = (y + u)/256 - 1/2``,
padding included) to *every* latent, the factored-out ones and the top one, flattened and
concatenated as :meth:`~genood.models.flow_model.FlowModel.encode` orders them (``D`` numbers
in, ``D`` out). The latents are the raw ones, before the priors standardise them.

For ``v ~ N(0, I_D)`` at the output, ``E_v ||v^T J||^2 = tr(J J^T) = ||J||_F^2``: one
vector-Jacobian product per probe ``v`` (a backward pass), averaged over ``samples`` probes, is
an unbiased estimate of ``R(x)`` for each sample of a batch. The Jacobian of a batch is block
diagonal (no layer mixes samples once ActNorm is initialised), so one product serves the batch.

``per_dim`` divides by ``D``: ``R(x) / D`` is the mean squared singular value of ``J`` (1 for
the identity), the quantity ``train.jacobian_penalty`` weighs (:mod:`genood.train.jacobian`).
Probes come from the global torch RNG (``torch.randn``), which training re-seeds every step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genood.flows.multiscale import FlowOutput
from genood.models.flow_model import FlowModel


def require_flow(model: Any, who: str) -> FlowModel:
    """``model`` as a :class:`FlowModel`, or a ``TypeError`` that names the fix."""
    if not isinstance(model, FlowModel):
        raise TypeError(
            f"{who} needs a normalising flow (glow, cv-glow, realnvp): its penalty is the "
            f"Jacobian of the map x -> z, and {type(model).__name__} has none. Set "
            "train.jacobian_penalty = 0, or model.name to a flow"
        )
    return model


def vjp_squared_norms(
    out: FlowOutput, x: Tensor, model: FlowModel, samples: int, create_graph: bool
) -> Tensor:
    """Hutchinson's estimate of ``||df/dx||_F^2`` per sample, from a forward already run.

    Args:
        out: ``model.flow(x)``, computed with ``x.requires_grad``.
        x: the flow's input ``(B, C, H, W)``, a leaf requiring gradients (or on its graph).
        model: the flow (to flatten its latents).
        samples: the number of Gaussian probes averaged (>= 1).
        create_graph: keep the graph of the products, to differentiate the estimate (training).

    Returns:
        ``(B,)`` float32 estimates of ``R(x)`` (not divided by ``D``).
    """
    if samples < 1:
        raise ValueError(f"the Jacobian penalty needs at least one probe, got samples={samples}")
    z = model.flow.flatten(out.latents)
    total = torch.zeros(z.shape[0], device=z.device, dtype=torch.float32)
    for index in range(samples):
        v = torch.randn(z.shape, device=z.device, dtype=z.dtype)
        (vjp,) = torch.autograd.grad(
            (z * v).sum(),
            x,
            create_graph=create_graph,
            retain_graph=create_graph or index < samples - 1,
        )
        total = total + vjp.float().pow(2).flatten(1).sum(dim=1)
    return total / samples


def jacobian_frobenius(model: Any, x: Tensor, samples: int = 1, per_dim: bool = True) -> Tensor:
    """Estimate ``R(x)`` (or ``R(x) / D``) for a batch in model space, without a training graph.

    Args:
        model: a :class:`FlowModel`.
        x: ``(B, C, H, W)`` in the model's input space (``model.preprocess``).
        samples: Gaussian probes averaged per sample.
        per_dim: divide by ``D`` (the mean squared singular value).

    Returns:
        ``(B,)`` float32 estimates, detached.
    """
    flow = require_flow(model, "jacobian_frobenius")
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        estimate = vjp_squared_norms(flow.flow(leaf), leaf, flow, samples, create_graph=False)
    return (estimate / flow.num_dims if per_dim else estimate).detach()


__all__ = ["jacobian_frobenius", "require_flow", "vjp_squared_norms"]
