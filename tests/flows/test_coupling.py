"""Affine and additive channel couplings."""

from __future__ import annotations

import pytest
import torch

from genood.flows.coupling import AdditiveCoupling, AffineCoupling, LogScale
from genood.flows.nets import GlowCouplingNet
from genood.flows.testing import assert_flow_exact


def _affine(channels: int = 4, scale: str = "sigmoid", swap: bool = False) -> AffineCoupling:
    c_a = channels // 2  # the conditioning half, whichever side it is on
    c_b = channels - c_a
    return AffineCoupling(channels, GlowCouplingNet(c_a, 2 * c_b, 8), scale=scale, swap=swap)


def _additive(channels: int = 4, swap: bool = False) -> AdditiveCoupling:
    c_a = channels // 2
    return AdditiveCoupling(channels, GlowCouplingNet(c_a, channels - c_a, 8), swap=swap)


def _train(layer: torch.nn.Module, shape: tuple[int, ...], steps: int = 3) -> None:
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    x = torch.randn(16, *shape, dtype=torch.float64)
    for _ in range(steps):
        z, logdet = layer(x)
        loss = (0.5 * z.square().sum(dim=(1, 2, 3)) - logdet).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


CASES = {
    "affine-sigmoid": lambda c: _affine(c),
    "affine-sigmoid-swap": lambda c: _affine(c, swap=True),
    "affine-tanh": lambda c: _affine(c, scale="tanh"),
    "additive": lambda c: _additive(c),
    "additive-swap": lambda c: _additive(c, swap=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_exact_at_init_and_after_training(case: str, channels: int) -> None:
    layer = CASES[case](channels).double()
    x = torch.randn(3, channels, 4, 4, dtype=torch.float64)
    assert_flow_exact(layer, x)
    _train(layer, (channels, 4, 4))
    z, _ = layer(x)
    assert not torch.allclose(z, x), "training should have moved the coupling off the identity"
    assert_flow_exact(layer, x)


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_coupling_is_the_identity(case: str) -> None:
    layer = CASES[case](4)
    x = torch.randn(2, 4, 4, 4)
    z, logdet = layer(x)
    assert torch.equal(z, x)
    assert torch.equal(logdet, torch.zeros(2))


def test_additive_is_volume_preserving() -> None:
    layer = _additive(4).double()
    _train(layer, (4, 4, 4))
    _, logdet = layer(torch.randn(5, 4, 4, 4, dtype=torch.float64))
    assert torch.equal(logdet, torch.zeros(5, dtype=torch.float64))


def test_conditioning_half_passes_through() -> None:
    layer = _affine(4).double()
    _train(layer, (4, 4, 4))
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    z, _ = layer(x)
    assert torch.equal(z[:, :2], x[:, :2])
    swapped = _affine(4, swap=True).double()
    _train(swapped, (4, 4, 4))
    z, _ = swapped(x)
    assert torch.equal(z[:, 2:], x[:, 2:])


def test_sigmoid_scale_is_bounded_and_stable() -> None:
    log_scale = LogScale("sigmoid", 1)
    h = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4])
    out = log_scale(h)
    assert torch.isfinite(out).all()
    assert float(out.max()) <= -torch.nn.functional.logsigmoid(torch.tensor(2.0)).item() + 1e-6
    assert float(out[2]) == 0.0


def test_network_runs_in_bf16_but_the_flow_stays_float32() -> None:
    layer = _affine(4)
    _train(layer.double(), (4, 4, 4))
    layer = layer.float()
    x = torch.randn(2, 4, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, logdet = layer(x)
        x_back = layer.inverse(z)
    assert z.dtype == torch.float32 and logdet.dtype == torch.float32
    assert float((x_back - x).detach().abs().max()) < 1e-4


def test_too_few_channels_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 channels"):
        AdditiveCoupling(1, torch.nn.Identity())
