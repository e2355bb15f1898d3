"""A normalising flow as a :class:`~genood.models.base.LikelihoodModel`.

:class:`FlowModel` wraps a :class:`~genood.flows.multiscale.MultiScaleFlow` and exposes the
likelihood-model contract plus what analyses of flows need:

* ``log_prob_terms(x) = {"log_pz": ..., "logdet": ...}``: the distribution term
  ``log p_z(f(x))`` (over every factored-out latent, under its learned prior) and the volume term
  ``log |det df/dx|`` (Nalisnick et al. 2019, eq. 3), per sample in nats;
* ``encode(x) -> (z, logdet)`` with ``z`` every latent flattened and concatenated, ``(B, D)``,
  and ``decode(z) -> x``, its exact inverse. ``z`` holds the *raw* latents, not standardised by
  the (learned, possibly conditional) priors; :meth:`FlowModel.log_pz` scores them;
* ``channel_mixing_matrices()`` and ``prior_params(x)`` for the second-order analysis of CV-Glow.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genood.flows.actnorm import ActNorm
from genood.flows.multiscale import MultiScaleFlow
from genood.flows.permutation import ChannelPermutation, _CachedWeight
from genood.flows.step import GlowStep
from genood.models.base import LikelihoodModel


class FlowModel(LikelihoodModel):
    """A multi-scale flow ``x -> z`` with Gaussian priors.

    Args:
        image_shape: ``(C, H, W)``.
        flow: the multi-scale flow; its ``input_shape`` must equal ``image_shape``.
        name: registry name (``glow``, ``cv-glow``, ``realnvp``), recorded by :meth:`describe`.
        hparams: the resolved hyper-parameters, recorded by :meth:`describe`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        flow: MultiScaleFlow,
        name: str,
        hparams: dict[str, Any],
    ) -> None:
        super().__init__(image_shape)
        if tuple(flow.input_shape) != self.image_shape:
            raise ValueError(f"flow input {flow.input_shape} != image shape {self.image_shape}")
        self.flow = flow
        self.name = name
        self.hparams = dict(hparams)

    # ----------------------------------------------------------------- the contract
    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """``{"log_pz": (B,), "logdet": (B,)}`` in nats; their sum is ``log p(x)``."""
        return self.log_prob_parts(x)[0]

    def log_prob_parts(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The terms, and the distribution term by level: ``log_pz.1`` .. ``log_pz.L``
        (``log p(z_i | kept_i)`` of each factored-out latent, the top latent's last)."""
        out = self.flow(x)
        parts = {f"log_pz.{i + 1}": part for i, part in enumerate(out.level_log_pz)}
        return {"log_pz": out.log_pz, "logdet": out.logdet}, parts

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` samples in model space; every latent drawn at ``temperature`` times its std."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        # Eval mode: sampling must never trigger ActNorm's data-dependent initialisation.
        was_training = self.training
        self.eval()
        try:
            return self.flow.sample(n, temperature)
        finally:
            self.train(was_training)

    # ----------------------------------------------------------------- latents
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, logdet)``: raw latents flattened and concatenated ``(B, D)``, and the
        volume term ``(B,)``. Latents are ordered by level (the first factored-out half first,
        the top latent last), each flattened in ``(C, H, W)`` order."""
        out = self.flow(x)
        return self.flow.flatten(out.latents), out.logdet

    def decode(self, z: Tensor) -> Tensor:
        """The exact inverse of :meth:`encode`: ``(B, D)`` latents -> ``x``."""
        return self.flow.inverse(self.flow.unflatten(z))

    def log_pz(self, z: Tensor) -> Tensor:
        """The distribution term of flattened latents ``z`` (as :meth:`encode` returns them).

        The split priors are conditioned on the kept halves, which are recovered from ``z`` by
        decoding, so ``log_pz(encode(x)[0])`` equals ``log_prob_terms(x)["log_pz"]``.
        """
        return self.flow(self.decode(z)).log_pz

    def prior_params(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each latent's prior ``(mean, log_std)`` at ``x``, in :meth:`encode`'s order and the
        latents' shapes. Split priors depend on ``x`` (through the kept halves); the top prior,
        and every prior when ``learn_prior=False``, does not."""
        return self.flow.prior_params(x)

    # ----------------------------------------------------------------- analysis
    def channel_mixing_matrices(
        self, level: int | None = None, fold_actnorm: bool = True
    ) -> list[Tensor]:
        """The channel-mixing matrix of every Glow step, in flow order.

        Step ``k`` computes, at every pixel, ``coupling(W_k (s_k * x + b_k))`` where ``s_k`` is
        ``exp`` of its ActNorm's log-scale and ``W_k`` its 1x1 convolution (or permutation
        matrix). With ``fold_actnorm=True`` (the default) the matrix returned is the effective
        linear part ``M_k = W_k @ diag(s_k)``; otherwise ``W_k`` alone (see
        :meth:`actnorm_scales` for ``s_k``). These are the ``u_k`` of Nalisnick et al. (2019),
        section 5, where ``alpha_c = prod_k sum_j u_{k,c,j}`` (rows ``c``, columns ``j``).

        Args:
            level: only the steps of this level (0-based); ``None``: all levels. Matrices of
                different levels have different sizes (``C_k`` grows with each squeeze).
            fold_actnorm: fold the preceding ActNorm scale into the matrix.

        Returns:
            Detached ``(C_k, C_k)`` matrices.
        """
        matrices = []
        for step in self._steps(level):
            mixing = step.mixing
            if isinstance(mixing, _CachedWeight):
                weight = mixing.weight
            elif isinstance(mixing, ChannelPermutation):
                eye = torch.eye(len(mixing.perm), device=mixing.perm.device)
                weight = eye[mixing.perm]
            else:  # pragma: no cover - every step mixes with one of the two above
                raise TypeError(f"unknown channel mixing {type(mixing).__name__}")
            if fold_actnorm:
                weight = weight * step.actnorm.log_scale.reshape(1, -1).exp()
            matrices.append(weight.detach())
        return matrices

    def actnorm_scales(self, level: int | None = None) -> list[Tensor]:
        """``s_k = exp(log_scale_k)`` of each Glow step's ActNorm, ``(C_k,)``, in flow order."""
        return [step.actnorm.log_scale.detach().reshape(-1).exp() for step in self._steps(level)]

    def _steps(self, level: int | None) -> list[GlowStep]:
        levels = list(self.flow.levels)
        if level is not None:
            if not 0 <= level < len(levels):
                raise ValueError(f"level must be in [0, {len(levels)}), got {level}")
            levels = [levels[level]]
        steps = [m for lvl in levels for m in lvl.modules() if isinstance(m, GlowStep)]
        if not steps:
            raise ValueError(f"{self.name} has no Glow steps (ActNorm + 1x1 convolution)")
        return steps

    # ----------------------------------------------------------------- initialisation
    @property
    def is_initialized(self) -> bool:
        """Whether every ActNorm has had its data-dependent initialisation."""
        return all(m.is_initialized for m in self.modules() if isinstance(m, ActNorm))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialisation of every ActNorm from the batch ``x`` (model space).

        Runs one forward pass in training mode; a no-op for layers already initialised (also
        after loading a checkpoint). Call it before wrapping the model in DDP.
        """
        was_training = self.training
        self.train()
        self.log_prob_terms(x)
        self.train(was_training)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "name": self.name, "hparams": dict(self.hparams)}


__all__ = ["FlowModel"]
