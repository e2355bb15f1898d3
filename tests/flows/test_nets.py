"""Coupling networks: zero-initialised outputs, shapes, formats."""

from __future__ import annotations

import pytest
import torch

from genood.flows.nets import GlowCouplingNet, ResNetCouplingNet, ZeroConv2d


def test_zero_conv_starts_at_zero_and_learns() -> None:
    conv = ZeroConv2d(3, 4)
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(conv(x), torch.zeros(2, 4, 5, 5))
    conv(x).sum().backward()
    assert conv.conv.weight.grad is not None and conv.conv.weight.grad.abs().sum() > 0


def test_zero_conv_returns_float32_under_bf16_autocast_and_keeps_float64() -> None:
    conv = ZeroConv2d(3, 4)
    torch.nn.init.normal_(conv.conv.weight)
    x = torch.randn(2, 3, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv(x)
    assert low.dtype == torch.float32  # shift and log-scale leave the network in float32
    assert torch.allclose(low, conv(x), atol=0.05 * conv(x).abs().max().item())
    assert conv.double()(x.double()).dtype == torch.float64


@pytest.mark.parametrize("actnorm", [False, True])
def test_glow_net_shapes_and_channels_last(actnorm: bool) -> None:
    net = GlowCouplingNet(2, 6, hidden=8, actnorm=actnorm).to(memory_format=torch.channels_last)
    x = torch.randn(3, 2, 4, 4).contiguous(memory_format=torch.channels_last)
    assert net(x).shape == (3, 6, 4, 4)


def test_resnet_net_shapes() -> None:
    net = ResNetCouplingNet(1, 2, hidden=8, blocks=2)
    assert net(torch.randn(3, 1, 4, 4)).shape == (3, 2, 4, 4)


def test_bad_width_is_refused() -> None:
    with pytest.raises(ValueError, match="hidden"):
        GlowCouplingNet(2, 4, hidden=0)
