"""Skip optimiser steps whose loss or gradients are not finite, and stop after too many in a row.

A single NaN step in a flow destroys the model: Adam(ax) writes the NaN into every parameter
and moment. The guard checks ``isfinite(loss) & isfinite(grad_norm)`` (the global gradient norm
is non-finite as soon as one gradient entry is) and, when the check fails, leaves parameters and
optimiser state exactly as they were. Skipped steps are counted; ``max_in_a_row`` consecutive
ones raise :class:`NonFiniteError`, because by then the model or the settings are broken.

Two modes give the same result:

* ``sync`` (CPU, where reading a flag costs nothing): read the flag, call ``optimizer.step()``
  only when it is true, and raise at once.
* on-device (CUDA): never read the flag in the hot loop. The step always runs on zeroed
  gradients when the flag is false, and parameters and optimiser state are then restored from a
  copy, ``p = ok * p_new + (1 - ok) * p_old``, exactly (multiplying by 1 and adding 0 is exact).
  The counters live on the device and are read at logging time, where a run of too many skipped
  steps raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

REMEDY = (
    "lower train.lr (e.g. --set train.lr=5e-4), raise train.warmup_steps, keep train.grad_clip "
    "on, or train in fp32 (--precision fp32); resume from the last checkpoint with the new "
    "settings, or start over with --no-resume"
)


class NonFiniteError(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


class NonFiniteGuard:
    """Skip and count non-finite steps; raise :class:`NonFiniteError` after too many in a row.

    Args:
        max_in_a_row: consecutive non-finite steps that stop the run (0: never stop).
        device: where the on-device counters live.
        sync: read the finiteness flag every step (CPU) instead of keeping it on the device.
        reduce_min: under DDP, a collective that replaces a 0/1 tensor by its minimum over ranks,
            so that every rank skips the same steps.
        on_skip: called with ``(step, loss, grad_norm)`` for each skipped step in sync mode.
    """

    def __init__(
        self,
        max_in_a_row: int,
        device: torch.device,
        sync: bool,
        reduce_min: Callable[[Tensor], None] | None = None,
        on_skip: Callable[[int, float, float], None] | None = None,
    ) -> None:
        self.max_in_a_row = max_in_a_row
        self.sync = sync
        self.reduce_min = reduce_min
        self.on_skip = on_skip
        # Totals over the whole run and the current streak; device tensors so that the
        # on-device mode never syncs; the sync mode keeps them in step as well.
        self._skipped = torch.zeros((), dtype=torch.int64, device=device)
        self._in_a_row = torch.zeros((), dtype=torch.int64, device=device)
        self._worst = torch.zeros((), dtype=torch.int64, device=device)
        self._last_checked_step = -1

    # ----------------------------------------------------------------- the step
    def finite(self, loss: Tensor, grad_norm: Tensor) -> Tensor:
        """``isfinite(loss) & isfinite(grad_norm)`` as a 0-d bool tensor, agreed on all ranks."""
        ok = torch.isfinite(loss.detach()).all() & torch.isfinite(grad_norm.detach()).all()
        if self.reduce_min is not None:
            flag = ok.to(torch.int32)
            self.reduce_min(flag)
            ok = flag.bool()
        return ok

    def step(
        self, optimizer: torch.optim.Optimizer, loss: Tensor, grad_norm: Tensor, step: int
    ) -> Tensor:
        """Run ``optimizer.step()`` unless the loss or gradients are non-finite.

        Returns:
            The 0-d bool flag (``True``: the step was taken), on the device.
        """
        ok = self.finite(loss, grad_norm.to(loss.device))
        # Optimiser state is created lazily by the first step; until then there is nothing to
        # restore from, so the first step always takes the sync path.
        use_sync = self.sync or not optimizer.state
        if use_sync:
            if bool(ok):
                optimizer.step()
            elif self.on_skip is not None:
                self.on_skip(step, float(loss.detach().float().mean()), float(grad_norm))
        else:
            masked_step(optimizer, ok)
        self.record(ok)
        if use_sync:
            self.check(step)
        return ok

    def record(self, ok: Tensor) -> None:
        """Update the counters with one step's flag (device ops only)."""
        skipped = (~ok).to(torch.int64)
        self._skipped += skipped
        self._in_a_row.mul_(skipped).add_(skipped)  # (run + 1) if skipped else 0
        torch.maximum(self._worst, self._in_a_row, out=self._worst)

    def check(self, step: int) -> None:
        """Raise :class:`NonFiniteError` when a streak reached ``max_in_a_row`` (reads counters)."""
        self._last_checked_step = step
        if self.max_in_a_row <= 0:
            return
        worst = int(self._worst)
        if worst >= self.max_in_a_row:
            raise NonFiniteError(
                f"{worst} optimiser steps in a row (up to step {step}) had a non-finite loss or "
                f"gradient (train.max_nonfinite = {self.max_in_a_row}); {self.skipped} skipped in "
                f"all. Parameters are those of the last finite step. To fix: {REMEDY}"
            )

    # ----------------------------------------------------------------- counters
    @property
    def skipped(self) -> int:
        """Non-finite steps skipped so far (reads the device counter)."""
        return int(self._skipped)

    @property
    def in_a_row(self) -> int:
        """Length of the current streak of skipped steps."""
        return int(self._in_a_row)

    def state_dict(self) -> dict[str, Any]:
        """Counters as plain ints, for checkpoints."""
        return {"skipped": self.skipped, "in_a_row": self.in_a_row, "worst": int(self._worst)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters of a checkpoint."""
        self._skipped.fill_(int(state.get("skipped", 0)))
        self._in_a_row.fill_(int(state.get("in_a_row", 0)))
        self._worst.fill_(int(state.get("worst", 0)))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """Every tensor an optimiser step writes: parameters and per-parameter state."""
    tensors: list[Tensor] = []
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param.grad is None:
                continue
            tensors.append(param.data)
            tensors.extend(v for v in optimizer.state.get(param, {}).values() if torch.is_tensor(v))
    return tensors


def masked_step(optimizer: torch.optim.Optimizer, ok: Tensor) -> None:
    """``optimizer.step()`` that leaves everything unchanged when ``ok`` is false, without a sync.

    Gradients are zeroed where ``ok`` is false (through one flat buffer, since there is no
    foreach ``where``), so that the step's result is finite, and the previous parameters and
    state are then selected back exactly: ``t = t * ok + t_old * (1 - ok)``.
    """
    with torch.no_grad():
        _masked_step(optimizer, ok)


def _masked_step(optimizer: torch.optim.Optimizer, ok: Tensor) -> None:
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    flat = torch.where(ok, flat, torch.zeros((), dtype=flat.dtype, device=flat.device))
    torch._foreach_copy_(
        grads, [f.view_as(g) for f, g in zip(flat.split([g.numel() for g in grads]), grads)]
    )
    tensors = _optimizer_tensors(optimizer)
    # An out-of-place foreach product is a copy in one fused launch (torch._foreach_clone is not
    # in every PyTorch release genood supports: CUDA builds of 2.11 lack it).
    backup = torch._foreach_mul(tensors, 1.0)
    optimizer.step()
    keep = ok.to(torch.float32)
    torch._foreach_mul_(tensors, keep)
    torch._foreach_mul_(backup, 1.0 - keep)
    torch._foreach_add_(tensors, backup)
