"""genood.densities: the Gaussian log-density in both parameterisations, per-sample sums."""

from __future__ import annotations

import pytest
import torch

from genood.densities import LOG_2PI, gaussian_log_prob, sum_except_batch


def test_gaussian_log_prob_matches_torch_distributions_both_ways() -> None:
    z = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    mean = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    log_std = torch.randn(4, 3, 2, 2, dtype=torch.float64) * 0.5
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(z)
    assert torch.allclose(gaussian_log_prob(z, mean, log_std=log_std), expected, atol=1e-12)
    assert torch.allclose(gaussian_log_prob(z, mean, std=log_std.exp()), expected, atol=1e-12)


def test_standard_normal_at_zero_is_minus_half_log_2pi() -> None:
    value = gaussian_log_prob(torch.zeros(1), torch.zeros(1), std=torch.ones(1))
    assert value.item() == pytest.approx(-0.5 * LOG_2PI)


def test_gaussian_log_prob_takes_exactly_one_scale() -> None:
    z = torch.zeros(2)
    with pytest.raises(TypeError, match="exactly one of std= and log_std="):
        gaussian_log_prob(z, z)
    with pytest.raises(TypeError, match="exactly one"):
        gaussian_log_prob(z, z, std=z + 1, log_std=z)


def test_sum_except_batch() -> None:
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(sum_except_batch(x), torch.tensor([66.0, 210.0]))
