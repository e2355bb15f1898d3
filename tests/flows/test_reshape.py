"""Squeeze and split."""

from __future__ import annotations

import pytest
import torch

from genood.densities import gaussian_log_prob, sum_except_batch
from genood.flows.reshape import FactorOut, Squeeze, squeeze, unsqueeze
from genood.flows.testing import assert_flow_exact


def test_squeeze_follows_openai_glow_ordering() -> None:
    x = torch.arange(2 * 4 * 4, dtype=torch.float64).reshape(1, 2, 4, 4)
    z = squeeze(x)
    assert z.shape == (1, 8, 2, 2)
    for c in range(2):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(z[0, 4 * c + 2 * dy + dx], x[0, c, dy::2, dx::2])
    assert torch.equal(unsqueeze(z), x)


def test_squeeze_layer_is_exact() -> None:
    assert_flow_exact(Squeeze(), torch.randn(2, 1, 4, 4, dtype=torch.float64))


def test_squeeze_keeps_channels_last() -> None:
    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    z, _ = Squeeze()(x)
    assert z.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(Squeeze().inverse(z), x)


def test_squeeze_refuses_odd_sizes() -> None:
    with pytest.raises(ValueError, match="divisible by 2"):
        squeeze(torch.randn(1, 1, 3, 4))


@pytest.mark.parametrize("learn", [True, False])
def test_split_scores_the_factored_half_under_its_prior(learn: bool) -> None:
    split = FactorOut(5, learn_prior=learn).double()
    if learn:
        torch.nn.init.normal_(split.prior.conv.conv.weight, std=0.3)
    z = torch.randn(3, 5, 2, 2, dtype=torch.float64)
    z_a, z_b, log_pz = split(z)
    assert z_a.shape == (3, 2, 2, 2) and z_b.shape == (3, 3, 2, 2)
    mean, log_std = split.prior.params(z_a)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(z_b).sum(dim=(1, 2, 3))
    assert torch.allclose(log_pz, expected, atol=1e-10)
    if not learn:
        assert torch.allclose(
            log_pz, sum_except_batch(gaussian_log_prob(z_b, 0 * z_b, log_std=0 * z_b))
        )
    assert torch.equal(split.inverse(z_a, z_b), z)


def test_split_refuses_wrong_channels() -> None:
    with pytest.raises(ValueError, match="expects 4 channels"):
        FactorOut(4)(torch.randn(1, 6, 2, 2))
