"""The multi-scale architecture assembled from parts."""

from __future__ import annotations

import pytest
import torch

from genood.flows.base import Sequential
from genood.flows.coupling import AdditiveCoupling
from genood.flows.multiscale import MultiScaleFlow
from genood.flows.nets import GlowCouplingNet
from genood.flows.permutation import InvertibleConv1x1
from genood.flows.reshape import Squeeze
from genood.flows.testing import jacobian_logdet


def _flow(learn_prior: bool = True) -> MultiScaleFlow:
    level1 = Sequential(
        [Squeeze(), InvertibleConv1x1(4), AdditiveCoupling(4, GlowCouplingNet(2, 2, 8))]
    )
    level2 = Sequential(
        [Squeeze(), InvertibleConv1x1(8), AdditiveCoupling(8, GlowCouplingNet(4, 4, 8))]
    )
    return MultiScaleFlow((1, 4, 4), [level1, level2], [(4, 2, 2), (8, 1, 1)], learn_prior)


def test_latents_cover_every_dimension() -> None:
    flow = _flow()
    assert flow.latent_shapes == [(2, 2, 2), (8, 1, 1)]
    out = flow(torch.randn(3, 1, 4, 4))
    assert [tuple(z.shape[1:]) for z in out.latents] == flow.latent_shapes
    assert flow.flatten(out.latents).shape == (3, 16)


@pytest.mark.parametrize("learn_prior", [True, False])
def test_exact_with_brute_force_logdet(learn_prior: bool) -> None:
    flow = _flow(learn_prior).double()
    for p in flow.parameters():  # move off the zero initialisation
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    out = flow(x)
    z = flow.flatten(out.latents)
    assert float((flow.inverse(flow.unflatten(z)) - x).detach().abs().max()) < 1e-10
    expected = jacobian_logdet(lambda v: flow.flatten(flow(v).latents), x)
    assert torch.allclose(out.logdet, expected, atol=1e-8)


def test_log_pz_adds_split_and_top_priors() -> None:
    flow = _flow(learn_prior=False).double()
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    out = flow(x)
    z = flow.flatten(out.latents)
    standard = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=1)
    assert torch.allclose(out.log_pz, standard, atol=1e-10)


def test_level_log_pz_are_each_latents_standard_normal_density() -> None:
    flow = _flow(learn_prior=False).double()
    out = flow(torch.randn(2, 1, 4, 4, dtype=torch.float64))
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = [normal.log_prob(z).flatten(1).sum(dim=1) for z in out.latents]
    assert len(out.level_log_pz) == len(out.latents) == 2
    for part, value in zip(out.level_log_pz, expected):
        assert torch.allclose(part, value, atol=1e-10)
    assert torch.allclose(sum(out.level_log_pz), out.log_pz, atol=1e-10)


def test_prior_params_shapes() -> None:
    flow = _flow()
    params = flow.prior_params(torch.randn(3, 1, 4, 4))
    assert [tuple(m.shape[1:]) for m, _ in params] == flow.latent_shapes
    assert [tuple(s.shape[1:]) for _, s in params] == flow.latent_shapes


def test_sample_shape() -> None:
    assert _flow().sample(5, temperature=0.7).shape == (5, 1, 4, 4)


def test_bad_shapes_are_refused() -> None:
    flow = _flow()
    with pytest.raises(ValueError, match="expected inputs of shape"):
        flow(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expected latents of shape \(B, 16\)"):
        flow.unflatten(torch.randn(2, 15))
    with pytest.raises(ValueError, match="dimensions"):
        MultiScaleFlow((1, 4, 4), [Squeeze()], [(4, 2, 1)])
