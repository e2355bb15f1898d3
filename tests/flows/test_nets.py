"""Coupling networks: zero-initialised outputs, shapes, formats."""

from __future__ import annotations

import pytest
import torch

from genood.flows.nets import ConvActNorm, GlowCouplingNet, ResNetCouplingNet, ZeroConv2d


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


def test_conv_actnorm_folds_the_scale_and_matches_the_unfolded_layers() -> None:
    torch.manual_seed(0)
    net = GlowCouplingNet(2, 4, hidden=8, actnorm=True)
    layer = net.net[0]
    assert isinstance(layer, ConvActNorm)
    x = torch.randn(5, 2, 6, 6)
    first = layer(x)  # the first training batch initialises ActNorm, unfolded
    assert torch.allclose(first.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-5)
    with torch.no_grad():
        layer[1].log_scale.add_(torch.randn_like(layer[1].log_scale))
    y = torch.randn(5, 2, 6, 6)
    unfolded = layer[1](layer[0](y))
    folded = layer(y)
    assert torch.allclose(folded, unfolded, atol=1e-5)
    grads = torch.autograd.grad(folded.square().sum(), [layer[1].log_scale, layer[1].bias])
    ref = torch.autograd.grad(unfolded.square().sum(), [layer[1].log_scale, layer[1].bias])
    for got, want in zip(grads, ref, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)
    # state-dict keys are those of nn.Sequential(conv, ActNormNet): old checkpoints still load
    assert {"net.0.0.weight", "net.0.1.bias", "net.0.1.log_scale"} <= set(net.state_dict())
