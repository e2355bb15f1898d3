"""A Glow step: ActNorm -> 1x1 convolution -> coupling."""

from __future__ import annotations

import torch

from genood.flows.actnorm import ActNorm
from genood.flows.coupling import AffineCoupling
from genood.flows.nets import GlowCouplingNet
from genood.flows.permutation import LUInvertibleConv1x1
from genood.flows.step import GlowStep
from genood.flows.testing import assert_flow_exact


def test_step_is_exact_after_init_and_training() -> None:
    step = GlowStep(
        ActNorm(4), LUInvertibleConv1x1(4), AffineCoupling(4, GlowCouplingNet(2, 4, 8))
    ).double()
    data = torch.randn(16, 4, 2, 2, dtype=torch.float64) * 2 + 1
    step(data)  # data-dependent initialisation
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    step.eval()
    assert_flow_exact(step, x)
    step.train()
    opt = torch.optim.Adam(step.parameters(), lr=0.05)
    for _ in range(3):
        z, logdet = step(data)
        loss = (0.5 * z.square().sum(dim=(1, 2, 3)) - logdet).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    step.eval()
    assert_flow_exact(step, x)
