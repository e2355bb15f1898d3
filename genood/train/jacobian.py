"""The Jacobian penalty of ``train.jacobian_penalty``: teaching a flow where to smear.

Rifai et al. (2011)'s contractive penalty, the talk's answer to "how do we get Glow to smear in
the right directions?" (after Girosi et al. 1990 and Bishop 1995): penalise the flow's
sensitivity to its input. With ``f`` the whole multi-scale map ``x -> z`` of a
:class:`~genood.models.flow_model.FlowModel` (input: the preprocessed, dequantised training batch
``x = (y + u)/256 - 1/2`` with its padding, the space the bits/dim loss is computed in; output:
every latent, factored-out and top, raw, as :mod:`genood.models.jacobian` states) each step
minimises

    loss = mean_b [ bpd(x_b) + lambda * R(x_b) / D ],    R(x) = ||df/dx||_F^2,

with ``bpd`` the bits/dim of :mod:`genood.train.loop`, ``D`` the sub-pixels (padding counted) and
``lambda = train.jacobian_penalty``: ``R / D`` is the mean squared singular value of ``df/dx``
(1 for the identity), so lambda is in bits/dim per unit of squared gain per dimension. ``R`` is
Hutchinson's unbiased estimate from ``train.jacobian_samples`` Gaussian probes at ``z``, each one
vector-Jacobian product ``v^T J`` by ``torch.autograd.grad(..., create_graph=True)``, so that the
optimiser differentiates through it (a double backward). The probes come from the global RNG,
which the loop re-seeds every step: a penalised run resumes exactly.

The likelihood pushes the other way: ``log p(x) = log p(z) + sum log sigma_i(J)``, and a flow that
expands the data's low-variance directions (FashionMNIST's black background, the zero padding)
gains likelihood there. The penalty makes that expansion cost ``lambda * mean sigma_i^2``.

Logged: ``loss_bpd`` stays the bits/dim alone (comparable with unpenalised runs);
``jacobian_r_per_dim`` is the mean estimate of ``R / D`` over the logged steps.

Limits (errors name the fix): flows only; precision ``fp32`` or ``bf16`` (autocast; the squared
norms are summed in fp32), not ``fp16`` (its grad scaler does not see the inner products, and
``R`` overflows fp16's range); not with ``train.compile`` (``torch.compile`` cannot build a
double backward). DDP works: the penalty is computed inside the wrapped module's ``forward``.
With ``jacobian_penalty = 0`` none of this runs and training is bitwise what it was.
"""

from __future__ import annotations

from torch import Tensor, nn

from genood import config as cfg
from genood.models.base import LikelihoodModel
from genood.models.jacobian import require_flow, vjp_squared_norms

# The log record's key of the mean estimate of R / D.
METRIC = "jacobian_r_per_dim"


class JacobianObjective(nn.Module):
    """Per-sample bits/dim and ``R / D`` of a model-space batch, in one forward (for DDP).

    Args:
        model: a flow.
        samples: Hutchinson probes per step.
    """

    def __init__(self, model: LikelihoodModel, samples: int) -> None:
        super().__init__()
        self.model = require_flow(model, "train.jacobian_penalty")
        self.samples = samples

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(bits (B,), R(x) / D (B,))``, both differentiable."""
        leaf = x.detach().requires_grad_(True)
        out = self.model.flow(leaf)
        bits = self.model.bits_from_log_prob((out.log_pz + out.logdet).float())
        r = vjp_squared_norms(out, leaf, self.model, self.samples, create_graph=True)
        return bits, r / self.model.num_dims


def check_penalty_config(train: cfg.TrainConfig, precision: str) -> None:
    """Refuse settings the penalty cannot run under, naming the fix.

    Args:
        train: the ``[train]`` table (``jacobian_penalty > 0``).
        precision: the resolved precision's name.
    """
    if precision == "fp16":
        raise ValueError(
            "train.jacobian_penalty does not support precision fp16 (the grad scaler does not "
            "cover the inner vector-Jacobian products, and R overflows fp16): set "
            "train.precision to bf16 or fp32"
        )
    if train.compile:
        raise ValueError(
            "train.jacobian_penalty needs a double backward, which torch.compile cannot build: "
            "set train.compile = false"
        )


__all__ = ["METRIC", "JacobianObjective", "check_penalty_config"]
