"""Brute-force checks of the change of variables, usable on any flow from outside.

``jacobian_logdet(fn, x)`` builds the full Jacobian of a per-sample map with
``torch.autograd.functional.jacobian`` and takes its ``slogdet``: O(D^3), for tiny inputs only
(e.g. ``1x8x8``), ideally in float64. Compare it with the log-det a flow reports.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genood.flows.base import Flow


def jacobian_logdet(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``log |det d fn / dx|`` for every sample of ``x``, ``(B,)``.

    Args:
        fn: maps a batch of one, ``(1, *x.shape[1:])``, to an output with as many elements
            (any shape); it must not mix samples (no batch statistics).
        x: ``(B, ...)`` inputs.

    Raises:
        ValueError: when ``fn`` changes the number of dimensions, or the Jacobian is singular.
    """
    logdets = []
    for b in range(x.shape[0]):
        x_b = x[b : b + 1].detach()

        def flat(v: Tensor, shape: torch.Size = x_b.shape) -> Tensor:
            return fn(v.reshape(shape)).reshape(-1)

        jac = torch.autograd.functional.jacobian(flat, x_b.reshape(-1))
        if jac.shape[0] != jac.shape[1]:
            raise ValueError(
                f"fn maps {jac.shape[1]} dimensions to {jac.shape[0]}: not a bijection"
            )
        sign, logabsdet = torch.linalg.slogdet(jac)
        if sign == 0:
            raise ValueError(f"the Jacobian of sample {b} is singular")
        logdets.append(logabsdet)
    return torch.stack(logdets)


def round_trip_error(
    forward: Callable[[Tensor], Tensor], inverse: Callable[[Tensor], Tensor], x: Tensor
) -> float:
    """``max |inverse(forward(x)) - x|``."""
    return float((inverse(forward(x)) - x).detach().abs().max())


def assert_flow_exact(
    flow: Flow, x: Tensor, round_trip_tol: float = 1e-6, logdet_tol: float = 1e-6
) -> None:
    """Assert that ``flow`` inverts exactly and reports the brute-force log-det on ``x``.

    Checks ``max |flow.inverse(flow(x)[0]) - x| < round_trip_tol``, that the log-det has shape
    ``(B,)``, and that it matches :func:`jacobian_logdet` within ``logdet_tol``. Use float64
    and tiny inputs; the flow should be in eval mode if it has data-dependent initialisation.
    """
    z, logdet = flow(x)
    if logdet.shape != (x.shape[0],):
        raise AssertionError(f"log-det must have shape ({x.shape[0]},), got {tuple(logdet.shape)}")
    error = float((flow.inverse(z) - x).detach().abs().max())
    if not error < round_trip_tol:
        raise AssertionError(f"round-trip error {error:.3g} >= {round_trip_tol:.1g}")
    expected = jacobian_logdet(lambda v: flow(v)[0], x)
    gap = float((logdet.detach().to(expected.dtype) - expected).abs().max())
    if not gap < logdet_tol:
        raise AssertionError(
            f"log-det differs from the brute-force slogdet by {gap:.3g} (>= {logdet_tol:.1g}): "
            f"reported {logdet.tolist()}, brute force {expected.tolist()}"
        )


__all__ = ["assert_flow_exact", "jacobian_logdet", "round_trip_error"]
