"""RealNVP's checkerboard and channel masks and the masked affine coupling."""

from __future__ import annotations

import pytest
import torch

from genood.flows.masks import MaskedAffineCoupling, channel_mask, checkerboard_mask
from genood.flows.nets import ResNetCouplingNet
from genood.flows.testing import assert_flow_exact


def test_checkerboard_mask() -> None:
    mask = checkerboard_mask(3, 4, parity=0)
    assert mask.shape == (1, 1, 3, 4)
    assert mask[0, 0].tolist() == [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    assert torch.equal(checkerboard_mask(3, 4, parity=1), 1 - mask)


def test_channel_mask() -> None:
    assert channel_mask(4, 0).flatten().tolist() == [1, 1, 0, 0]
    assert channel_mask(4, 1).flatten().tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="parity"):
        channel_mask(4, 2)


def _layer(kind: str, parity: int, channels: int = 2) -> MaskedAffineCoupling:
    mask = (
        checkerboard_mask(4, 4, parity)
        if kind == "checkerboard"
        else channel_mask(channels, parity)
    )
    net = ResNetCouplingNet(channels, 2 * channels, hidden=8, blocks=1, actnorm=False)
    return MaskedAffineCoupling(mask, channels, net, scale="tanh")


@pytest.mark.parametrize("kind", ["checkerboard", "channel"])
@pytest.mark.parametrize("parity", [0, 1])
def test_exact_at_init_and_after_training(kind: str, parity: int) -> None:
    layer = _layer(kind, parity).double()
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    assert_flow_exact(layer, x)
    z, _ = layer(x)
    assert torch.equal(z, x), "a new coupling is the identity"
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    data = torch.randn(16, 2, 4, 4, dtype=torch.float64)
    for _ in range(3):
        z, logdet = layer(data)
        loss = (0.5 * z.square().sum(dim=(1, 2, 3)) - logdet).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    z, _ = layer(x)
    mask = layer.mask.bool().expand_as(x)
    assert torch.equal(z[mask], x[mask]), "conditioning entries pass through"
    assert not torch.allclose(z, x)
    assert_flow_exact(layer, x)


def test_single_channel_checkerboard() -> None:
    layer = _layer("checkerboard", 0, channels=1).double()
    assert_flow_exact(layer, torch.randn(2, 1, 4, 4, dtype=torch.float64))


def test_non_binary_mask_is_refused() -> None:
    net = ResNetCouplingNet(1, 2, hidden=4, blocks=0)
    with pytest.raises(ValueError, match="binary"):
        MaskedAffineCoupling(torch.full((1, 1, 2, 2), 0.5), 1, net)
