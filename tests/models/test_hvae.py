"""The hierarchical VAE: L^{>k} bounds, LLR^{>k}, ordered bounds, training, save / resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genood.models import build
from genood.models.hvae import HierarchicalVAE


def tiny(image_shape: tuple[int, int, int] = (1, 8, 8), **hparams: object) -> HierarchicalVAE:
    options = {
        "latent_channels": [2, 3, 2],
        "hidden": 8,
        "num_mixtures": 2,
        "iw_samples": 8,
        **hparams,
    }
    return build("hvae", image_shape, **options)  # type: ignore[return-value]


def images(n: int, shape: tuple[int, int, int] = (1, 8, 8)) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8)


def sharpened(model: HierarchicalVAE) -> HierarchicalVAE:
    """Make the top-down path lean hard on the latents, so that the bounds are visibly apart."""
    with torch.no_grad():
        for layer in model.z_in:
            layer.weight.mul_(10)
    return model.eval()


def test_default_has_three_stochastic_layers_at_decreasing_resolution() -> None:
    model = build("hvae", (1, 28, 28), hidden=8)
    assert model.num_latents == 3
    assert model.heights == [28, 14, 7, 4]
    x = model.preprocess(images(2, (1, 28, 28)), dequantize=False)
    assert list(model.eval().log_prob_terms(x)) == [
        "log_px_given_z",
        "neg_kl_z1",
        "neg_kl_z2",
        "neg_kl_z3",
        "iwae_gap",
    ]


def test_l_above_zero_is_the_elbo() -> None:
    model = tiny().eval()
    x = model.preprocess(images(4), dequantize=False)
    torch.manual_seed(7)
    above_0 = model.bound_above(x, 0)
    torch.manual_seed(7)
    torch.testing.assert_close(above_0, model.elbo(x))


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_l_above_k_uses_the_posterior_of_the_layers_above_k_only(k: int) -> None:
    model = tiny().eval()
    x = model.preprocess(images(3), dequantize=False)
    model.bound_above(x, k).sum().backward()
    for i, head in enumerate(model.posterior, start=1):
        used = head.weight.grad is not None and bool((head.weight.grad != 0).any())
        assert used == (i > k), f"q(z_{i}) {'un' if i > k else ''}expectedly used for L^>{k}"
    for i, head in enumerate(model.prior, start=1):  # p(z_i | z_>i) for i < L
        assert head.weight.grad is not None, f"p(z_{i} | z_>{i}) unused"


def test_bounds_are_ordered() -> None:
    model = sharpened(tiny())
    x = model.preprocess(images(24), dequantize=False)
    repeats = 6
    with torch.no_grad():
        elbo = model.elbo(x, samples=100).mean()
        iwae = {
            k: torch.stack([model.iwae_bound(x, k) for _ in range(repeats)]) for k in (1, 8, 64)
        }
    mean = {k: v.mean() for k, v in iwae.items()}
    stderr = {k: v.mean(dim=1).std() / math.sqrt(repeats) for k, v in iwae.items()}
    assert abs(mean[1] - elbo) < 4 * stderr[1] + 0.05
    assert mean[1] < mean[8] < mean[64]
    assert elbo < mean[64] - 4 * stderr[64]


def test_llr_is_elbo_minus_l_above_k() -> None:
    model = tiny().eval()
    x = model.preprocess(images(5), dequantize=False)
    torch.manual_seed(3)
    llr = model.llr(x, 2, samples=4, prior_mode=True)
    torch.manual_seed(3)
    expected = model.bound_above(x, 0, samples=4) - model.bound_above(x, 2, 4, prior_mode=True)
    torch.testing.assert_close(llr, expected)
    assert llr.shape == (5,) and torch.isfinite(llr).all()
    with pytest.raises(ValueError, match="k in 1..3"):
        model.llr(x, 0)
    with pytest.raises(ValueError, match="0..3"):
        model.bound_above(x, 4)


@pytest.mark.parametrize("channels", [1, 3])
def test_trains_a_few_steps_on_synthetic_data(channels: int) -> None:
    shape = (channels, 8, 8)
    model = tiny(shape, kl_warmup_steps=5)
    data = (torch.rand(16, 1, 1, 1) * 255).to(torch.uint8).expand(16, *shape).contiguous()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model.bits_from_log_prob(model.log_prob(model.preprocess(data, True))).mean()
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.5
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model.llr(model.preprocess(data, False), 1)).all()


def test_bits_per_dim_and_samples() -> None:
    model = tiny((3, 8, 8), score_bound="elbo").eval()
    batch = images(2, (3, 8, 8))
    torch.manual_seed(0)
    bpd = model.bits_per_dim(batch)
    torch.manual_seed(0)
    log_p = model.log_prob(model.preprocess(batch, dequantize=False))
    torch.testing.assert_close(bpd, -log_p / (192 * math.log(2)))
    assert "upper bound" in str(model.describe()["likelihood"])
    samples = model.sample_images(3, temperature=0.8)
    assert samples.shape == (3, 3, 8, 8) and samples.dtype == torch.uint8


def test_save_and_resume(tmp_path: Path) -> None:
    model = tiny()
    batch = images(6)
    (-model.log_prob(model.preprocess(batch, True)).mean()).backward()
    torch.save(model.state_dict(), tmp_path / "hvae.pt")
    restored = tiny()
    restored.load_state_dict(torch.load(tmp_path / "hvae.pt"))
    model.eval()
    restored.eval()
    x = model.preprocess(batch, dequantize=False)
    torch.manual_seed(4)
    a = model.llr(x, 1)
    torch.manual_seed(4)
    torch.testing.assert_close(restored.llr(x, 1), a)


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="latent_channels"):
        tiny(latent_channels=[])
    with pytest.raises(TypeError):
        tiny(latent_dim=3)
