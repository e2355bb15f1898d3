"""1x1 convolutions (plain and LU) and fixed permutations."""

from __future__ import annotations

import pytest
import torch

from genood.flows.permutation import ChannelPermutation, InvertibleConv1x1, LUInvertibleConv1x1
from genood.flows.testing import assert_flow_exact

LAYERS = {
    "conv": lambda c: InvertibleConv1x1(c),
    "lu": lambda c: LUInvertibleConv1x1(c),
    "reverse": lambda c: ChannelPermutation(c, "reverse"),
    "shuffle": lambda c: ChannelPermutation(c, "shuffle"),
}


def _train(layer: torch.nn.Module, steps: int = 3) -> None:
    """A few Adam steps of maximum likelihood under N(0, I) on random data."""
    params = list(layer.parameters())
    if not params:
        return
    opt = torch.optim.Adam(params, lr=0.05)
    x = torch.randn(16, *_SHAPE, dtype=torch.float64) * 2
    for _ in range(steps):
        z, logdet = layer(x)
        loss = (0.5 * z.square().sum(dim=(1, 2, 3)) - logdet).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


_SHAPE = (4, 2, 2)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_exact_at_init_and_after_training(kind: str) -> None:
    layer = LAYERS[kind](_SHAPE[0]).double()
    x = torch.randn(3, *_SHAPE, dtype=torch.float64)
    assert_flow_exact(layer, x)
    _train(layer)
    assert_flow_exact(layer, x)


@pytest.mark.parametrize("kind", ["conv", "lu"])
def test_float32_round_trip(kind: str) -> None:
    layer = LAYERS[kind](8)
    x = torch.randn(4, 8, 5, 5)
    z, _ = layer(x)
    assert float((layer.inverse(z) - x).detach().abs().max()) < 1e-4


def test_lu_logdet_is_the_slogdet_of_its_weight() -> None:
    layer = LUInvertibleConv1x1(6).double()
    _ = layer.log_s.data.add_(torch.linspace(-0.3, 0.4, 6, dtype=torch.float64))
    weight, logdet = layer.build()
    assert torch.allclose(logdet, torch.linalg.slogdet(weight)[1], atol=1e-12)
    # L is unit lower and U strictly upper triangular, whatever the raw parameters hold.
    layer.lower.data.fill_(0.3)
    layer.upper.data.fill_(-0.2)
    weight, logdet = layer.build()
    assert torch.allclose(logdet, torch.linalg.slogdet(weight)[1], atol=1e-12)


def test_initial_weight_is_a_rotation() -> None:
    weight = LUInvertibleConv1x1(5).weight
    assert torch.allclose(weight @ weight.T, torch.eye(5), atol=1e-5)


def test_eval_cache_follows_parameter_updates() -> None:
    layer = LUInvertibleConv1x1(4).eval()
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        z1, _ = layer(x)
        assert "weight" in layer._cache
        layer.log_s.add_(0.5)  # in-place update, as an optimiser or load_state_dict does
        z2, logdet2 = layer(x)
    assert not torch.allclose(z1, z2)
    fresh_weight, fresh_logdet = layer.build()
    assert torch.allclose(z2, torch.einsum("ij,bjhw->bihw", fresh_weight, x), atol=1e-6)
    assert torch.allclose(logdet2, fresh_logdet.detach() * 9)
    layer.train()
    assert layer._cache == {}


def test_eval_with_grad_enabled_is_differentiable() -> None:
    layer = InvertibleConv1x1(4).eval()
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    z, logdet = layer(x)
    (z.sum() + logdet.sum()).backward()
    assert layer.weight_matrix.grad is not None
    assert x.grad is not None


def test_mixing_stays_float32_under_autocast() -> None:
    layer = LUInvertibleConv1x1(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, logdet = layer(torch.randn(2, 4, 3, 3))
    assert z.dtype == torch.float32 and logdet.dtype == torch.float32


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(ValueError, match="expects 4 channels"):
        LUInvertibleConv1x1(4)(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="unknown permutation kind"):
        ChannelPermutation(4, "sorted")


def test_shuffle_is_saved_with_the_state() -> None:
    a = ChannelPermutation(8, "shuffle")
    b = ChannelPermutation(8, "shuffle")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.perm, b.perm)
