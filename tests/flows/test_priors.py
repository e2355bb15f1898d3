"""Gaussian priors: log-density, soft clamp, sampling, precision."""

from __future__ import annotations

import torch

from genood.flows.priors import (
    LOG_STD_BOUND,
    ConditionalPrior,
    TopPrior,
    soft_clamp,
)


def test_soft_clamp_is_bounded_and_identity_near_zero() -> None:
    raw = torch.tensor([-1e6, -3.0, 0.0, 1e-3, 1e6])
    out = soft_clamp(raw)
    assert float(out.abs().max()) <= LOG_STD_BOUND
    assert abs(float(out[3]) - 1e-3) < 1e-6


def test_new_priors_are_standard_normal() -> None:
    top = TopPrior((3, 2, 2), learn=True)
    z = torch.randn(5, 3, 2, 2)
    standard = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=(1, 2, 3))
    assert torch.allclose(top.log_prob(z), standard, atol=1e-5)
    cond = ConditionalPrior(2, 3, learn=True)
    assert torch.allclose(cond.log_prob(z, torch.randn(5, 2, 2, 2)), standard, atol=1e-5)


def test_sampling_at_zero_temperature_gives_the_mean() -> None:
    top = TopPrior((2, 2, 2), learn=True)
    with torch.no_grad():
        top.mean.fill_(0.7)
    assert torch.allclose(top.sample(3, temperature=0.0), torch.full((3, 2, 2, 2), 0.7))
    cond = ConditionalPrior(2, 2, learn=False)
    assert torch.equal(
        cond.sample(torch.randn(3, 2, 2, 2), temperature=0.0), torch.zeros(3, 2, 2, 2)
    )


def test_sampling_temperature_scales_the_std() -> None:
    top = TopPrior((4, 8, 8), learn=False)
    samples = top.sample(200, temperature=0.5)
    assert abs(float(samples.std()) - 0.5) < 0.02


def test_prior_runs_in_float32_under_autocast() -> None:
    cond = ConditionalPrior(2, 2, learn=True)
    torch.nn.init.normal_(cond.conv.conv.weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, log_std = cond.params(torch.randn(2, 2, 3, 3))
        log_p = cond.log_prob(torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3))
    assert mean.dtype == log_std.dtype == log_p.dtype == torch.float32
