"""ActNorm: exactness, data-dependent initialisation, and no re-initialisation on load."""

from __future__ import annotations

import torch

from genood.flows.actnorm import ActNorm, ActNormNet
from genood.flows.testing import assert_flow_exact


def _data(batch: int = 16, channels: int = 2) -> torch.Tensor:
    return 3.0 * torch.randn(batch, channels, 4, 4, dtype=torch.float64) + 1.5


def test_identity_at_construction_is_exact() -> None:
    layer = ActNorm(2).double().eval()
    assert_flow_exact(layer, _data(3))


def test_initialisation_standardises_the_first_batch() -> None:
    layer = ActNorm(2).double()
    x = _data()
    z, _ = layer(x)
    assert int(layer.initialized) == 1
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(
        z.std(dim=(0, 2, 3), unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-5
    )
    layer.eval()
    assert_flow_exact(layer, _data(3))


def test_exact_after_training_steps() -> None:
    layer = ActNorm(2).double()
    x = _data()
    layer(x)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(3):
        z, logdet = layer(x)
        loss = (0.5 * z.square().sum(dim=(1, 2, 3)) - logdet).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    layer.eval()
    assert_flow_exact(layer, _data(3))


def test_initialises_only_once_and_only_in_training() -> None:
    layer = ActNorm(2)
    layer.eval()
    layer(torch.randn(8, 2, 4, 4) * 5)
    assert int(layer.initialized) == 0
    layer.train()
    layer(torch.randn(8, 2, 4, 4) * 5)
    first = layer.log_scale.detach().clone()
    layer(torch.randn(8, 2, 4, 4) * 0.1)
    assert torch.equal(layer.log_scale.detach(), first)


def test_loading_a_checkpoint_never_reinitialises() -> None:
    trained = ActNorm(3)
    trained(torch.randn(8, 3, 4, 4) * 4 + 2)
    state = trained.state_dict()
    assert "initialized" in state

    fresh = ActNorm(3)
    fresh.load_state_dict(state)
    fresh.train()
    fresh(torch.randn(8, 3, 4, 4) * 0.01)  # very different statistics
    assert torch.equal(fresh.log_scale, trained.log_scale)
    assert torch.equal(fresh.bias, trained.bias)


def test_loading_an_uninitialised_state_reenables_initialisation() -> None:
    layer = ActNorm(2)
    layer(torch.randn(8, 2, 4, 4) * 3)
    layer.load_state_dict(ActNorm(2).state_dict())
    assert not layer.is_initialized
    layer(torch.randn(8, 2, 4, 4) * 3)
    assert layer.is_initialized
    assert float(layer.log_scale.detach().abs().max()) > 0.5


def test_logdet_is_float32_under_bf16_autocast() -> None:
    layer = ActNorm(2)
    layer(torch.randn(8, 2, 4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, logdet = layer(torch.randn(8, 2, 4, 4))
    assert z.dtype == torch.float32
    assert logdet.dtype == torch.float32
    assert logdet.shape == (8,)


def test_actnorm_net_returns_only_the_output() -> None:
    layer = ActNormNet(4)
    out = layer(torch.randn(8, 4, 3, 3) * 2)
    assert out.shape == (8, 4, 3, 3)
    assert layer.is_initialized
