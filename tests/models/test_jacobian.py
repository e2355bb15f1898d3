"""Hutchinson's estimate of a flow's ||df/dx||_F^2 is unbiased: checked against the exact
Jacobian of a tiny Glow (``torch.autograd.functional.jacobian``) over many probes."""

from __future__ import annotations

import pytest
import torch

from genood.models import build
from genood.models.jacobian import jacobian_frobenius, require_flow, vjp_squared_norms

SHAPE = (1, 4, 4)


def _tiny_flow(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build("glow", SHAPE, levels=2, steps=2, hidden=8)
    images = torch.randint(0, 256, (32, *SHAPE), dtype=torch.uint8)
    model.initialize(model.preprocess(images, dequantize=True))
    # move the weights away from their (near-identity) initialisation
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def _exact(model: torch.nn.Module, x: torch.Tensor) -> float:
    """||df/dx||_F^2 of one image, f: x -> every latent, flattened."""

    def f(image: torch.Tensor) -> torch.Tensor:
        return model.flow.flatten(model.flow(image.unsqueeze(0)).latents)[0]

    jac = torch.autograd.functional.jacobian(f, x.double())
    return float(jac.pow(2).sum())


def test_estimate_is_unbiased_against_the_exact_jacobian() -> None:
    model = _tiny_flow().double()
    image = torch.randint(0, 256, (1, *SHAPE), dtype=torch.uint8)
    x = model.preprocess(image, dequantize=False).double()
    exact = _exact(model, x[0])
    n = 4000  # the batch's Jacobian is block diagonal: copies of one image are independent probes
    torch.manual_seed(1)
    estimates = jacobian_frobenius(model, x.expand(n, *SHAPE), samples=1, per_dim=False).double()
    mean, stderr = float(estimates.mean()), float(estimates.std()) / n**0.5
    assert abs(mean - exact) < 4 * stderr
    assert mean == pytest.approx(exact, rel=0.05)
    assert float(estimates.std()) > 0  # a stochastic estimate, not the exact value by accident


def test_several_probes_average_and_per_dim_divides_by_d() -> None:
    model = _tiny_flow(seed=3)
    x = model.preprocess(torch.randint(0, 256, (6, *SHAPE), dtype=torch.uint8), dequantize=False)
    torch.manual_seed(5)
    total = jacobian_frobenius(model, x, samples=3, per_dim=False)
    torch.manual_seed(5)
    per_dim = jacobian_frobenius(model, x, samples=3, per_dim=True)
    torch.testing.assert_close(per_dim, total / model.num_dims)
    torch.manual_seed(5)
    one = [jacobian_frobenius(model, x, samples=1, per_dim=False) for _ in range(3)]
    torch.testing.assert_close(total, sum(one) / 3, rtol=1e-5, atol=1e-4)  # same probes, in order


def test_training_estimate_is_differentiable() -> None:
    model = _tiny_flow(seed=4).train()
    x = model.preprocess(torch.randint(0, 256, (4, *SHAPE), dtype=torch.uint8), dequantize=True)
    leaf = x.requires_grad_(True)
    r = vjp_squared_norms(model.flow(leaf), leaf, model, samples=1, create_graph=True)
    r.mean().backward()
    grads = [p.grad for p in model.flow.levels.parameters() if p.requires_grad]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_not_a_flow_and_no_probes_are_refused() -> None:
    vae = build("vae", (1, 8, 8), latent_dim=2, hidden=4, downsamples=1)
    with pytest.raises(TypeError, match=r"needs a normalising flow.*model\.name to a flow"):
        require_flow(vae, "train.jacobian_penalty")
    model = _tiny_flow()
    x = model.preprocess(torch.zeros((1, *SHAPE), dtype=torch.uint8), dequantize=False)
    with pytest.raises(ValueError, match="at least one probe"):
        jacobian_frobenius(model, x, samples=0)
