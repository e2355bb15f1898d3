"""The hierarchical VAE in the authors' setting: Bernoulli decoder on binarised images, dense
top latents, strides (2, 2, 1), kernel 5 first, weight norm, free nats."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from genood.models import build

AUTHORS = {
    "likelihood": "bernoulli",
    "strides": [2, 2, 1],
    "dense_latents": 2,
    "first_kernel": 5,
    "weight_norm": True,
}


def tiny(**hparams: object) -> Any:
    options = {"latent_channels": [2, 3, 2], "hidden": 8, "iw_samples": 4, **AUTHORS, **hparams}
    return build("hvae", (1, 8, 8), **options)  # type: ignore[return-value]


def images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)


def test_layout_mirrors_the_authors() -> None:
    model: Any = build("hvae", (1, 28, 28), hidden=8, **AUTHORS)
    assert model.heights == [28, 14, 7, 7] and model.dense == [False, True, True]
    assert model.stem[0].kernel_size == (5, 5) and model.bottom_up[1][0].kernel_size == (3, 3)
    weights = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert all(hasattr(m, "parametrizations") for m in weights)
    model.eval()
    x = model.preprocess(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), dequantize=False)
    with torch.no_grad():
        h = model.stem(x)
        block = model.stem[1]
        assert torch.equal(block(h), h)  # zero-started residual branch under weight norm
        terms = model.log_prob_terms(x)
    assert list(terms) == ["log_px_given_z", "neg_kl_z1", "neg_kl_z2", "neg_kl_z3", "iwae_gap"]
    assert all(torch.isfinite(v).all() for v in terms.values())


def test_preprocess_binarises_fresh_in_training_and_fixed_when_scoring() -> None:
    model = tiny()
    batch = images(16)
    fixed = model.preprocess(batch, dequantize=False)
    assert set(fixed.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(fixed, model.preprocess(batch, dequantize=False))
    a = model.preprocess(batch, True, torch.Generator().manual_seed(0))
    b = model.preprocess(batch, True, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(model.postprocess(fixed), (fixed * 255).to(torch.uint8))


def test_terms_sum_to_the_bound_and_bits_are_per_binary_pixel() -> None:
    model = tiny(score_bound="elbo").eval()
    batch = images(3)
    x = model.preprocess(batch)
    torch.manual_seed(0)
    bits = model.bits_per_dim(batch)
    torch.manual_seed(0)
    terms = model.log_prob_terms(x)
    torch.testing.assert_close(bits, -sum(terms.values()) / (64 * math.log(2)))
    assert model.log_scale == 0.0 and "binary pixel" in str(model.describe()["bits_per_dim"])
    assert model.describe()["decoder"] == "bernoulli"
    with torch.no_grad():  # the decoder alone: log p(x | z) <= 0 on binary data
        assert bool((terms["log_px_given_z"] <= 0).all())
    samples = model.sample_images(4)
    assert set(samples.unique().tolist()) <= {0, 255}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_llr_with_dense_latents_and_the_prior_mode(k: int) -> None:
    model = tiny().eval()
    x = model.preprocess(images(5))
    torch.manual_seed(1)
    llr = model.llr(x, k, prior_mode=True)
    torch.manual_seed(1)
    expected = model.bound_above(x, 0) - model.bound_above(x, k, prior_mode=True)
    torch.testing.assert_close(llr, expected)


def test_free_nats_floor_the_training_kl() -> None:
    # a floor far above any KL: the objective is log p(x|z) - beta * sum_i floor_i
    model = tiny(free_nats=1000.0, free_nats_steps=2, free_nats_anneal_steps=2).train()
    x = model.preprocess(images(4), True, torch.Generator().manual_seed(0))
    terms = model.log_prob_terms(x)
    kl = -(terms["neg_kl_z1"] + terms["neg_kl_z2"] + terms["neg_kl_z3"])
    floors = 1000.0 / 2 * 2 * 4 * 4 + 1000.0 + 1000.0  # conv z_1 2x4x4, dense z_2, z_3
    torch.testing.assert_close(terms["free_nats_penalty"], -(floors - kl))
    torch.testing.assert_close(sum(terms.values()), terms["log_px_given_z"] - floors)
    # no gradient reaches the posterior heads through the floored KL
    torch.stack([v for n, v in terms.items() if n != "log_px_given_z"]).sum().backward()
    head = model.posterior[0].parametrizations.weight.original1
    assert head.grad is None or not bool(head.grad.any())
    budgets = []
    for _ in range(5):
        budgets.append(model.free_nats_now())
        model.log_prob_terms(x)
    assert budgets == [1000.0, 1000.0, 500.0, 0.0, 0.0]  # passes 1..5: hold 2, anneal 2
    assert "free_nats_penalty" not in model.log_prob_terms(x)
    model.eval()
    assert "free_nats_penalty" not in model.log_prob_terms(x)


def test_bad_settings_name_the_fix() -> None:
    with pytest.raises(ValueError, match="one stride"):
        tiny(strides=[2, 2])
    with pytest.raises(ValueError, match="likelihood"):
        tiny(likelihood="gaussian")
    with pytest.raises(ValueError, match="dense_latents"):
        tiny(dense_latents=4)
    with pytest.raises(ValueError, match="free_nats"):
        tiny(free_nats=-1.0)
