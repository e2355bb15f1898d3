"""Whole flow models (Glow, CV-Glow, RealNVP): exactness, the terms, encode/decode, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from genood.flows.testing import jacobian_logdet
from genood.models import build
from genood.models.flow_model import FlowModel

TINY = {
    "glow-affine-lu": ("glow", {"coupling": "affine", "permutation": "lu"}),
    "glow-affine-conv": ("glow", {"coupling": "affine", "permutation": "conv"}),
    "glow-additive-shuffle": ("glow", {"coupling": "additive", "permutation": "shuffle"}),
    "glow-reverse-standard-prior": ("glow", {"permutation": "reverse", "learn_prior": False}),
    "glow-nn-actnorm": ("glow", {"nn_actnorm": True}),
    "cv-glow": ("cv-glow", {}),
    "realnvp": ("realnvp", {"blocks": 1, "learn_prior": True}),
}


def _tiny(case: str, image_shape: tuple[int, int, int] = (1, 8, 8)) -> FlowModel:
    name, extra = TINY[case]
    model = build(name, image_shape=image_shape, levels=2, steps=2, hidden=8, **extra)
    assert isinstance(model, FlowModel)
    return model


def _data(
    n: int, image_shape: tuple[int, int, int] = (1, 8, 8), dtype=torch.float64
) -> torch.Tensor:
    # Deliberately not standardised, so that ActNorm's initialisation does something.
    return 0.3 * torch.rand(n, *image_shape, dtype=dtype) - 0.1


def _train(model: FlowModel, steps: int = 3, lr: float = 1e-2) -> None:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = _data(16, model.image_shape, next(model.parameters()).dtype)
    for _ in range(steps):
        loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _check_exact(model: FlowModel, x: torch.Tensor) -> None:
    model.eval()
    z, logdet = model.encode(x)
    assert z.shape == (x.shape[0], model.num_dims)
    assert float((model.decode(z) - x).detach().abs().max()) < 1e-6
    expected = jacobian_logdet(lambda v: model.encode(v)[0], x)
    assert torch.allclose(logdet.detach(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", sorted(TINY))
def test_exact_after_init_and_after_training(case: str) -> None:
    model = _tiny(case).double()
    model.initialize(_data(16))
    assert model.is_initialized
    x = _data(2)
    _check_exact(model, x)
    before = model.log_prob(x).detach()
    _train(model)
    model.eval()
    assert not torch.allclose(model.log_prob(x).detach(), before), "training changed nothing"
    _check_exact(model, x)


def test_exact_on_three_channels() -> None:
    model = _tiny("glow-affine-lu", (3, 4, 4)).double()
    model.initialize(_data(16, (3, 4, 4)))
    _train(model)
    _check_exact(model, _data(2, (3, 4, 4)))


@pytest.mark.parametrize("case", sorted(TINY))
def test_float32_round_trip(case: str) -> None:
    model = _tiny(case)
    model.initialize(_data(16, dtype=torch.float32))
    _train(model)
    model.eval()
    x = _data(4, dtype=torch.float32)
    with torch.no_grad():
        z, _ = model.encode(x)
        assert float((model.decode(z) - x).abs().max()) < 1e-4


@pytest.mark.parametrize("case", sorted(TINY))
def test_encode_terms_and_parts_match_log_prob_terms(case: str) -> None:
    model = _tiny(case).double()
    model.initialize(_data(16))
    _train(model)
    model.eval()
    x = _data(3)
    with torch.no_grad():
        terms = model.log_prob_terms(x)
        assert set(terms) == {"log_pz", "logdet"}
        z, logdet = model.encode(x)
        assert torch.allclose(logdet, terms["logdet"], atol=1e-10)
        assert torch.allclose(model.log_pz(z) + logdet, model.log_prob(x), atol=1e-8)
        # the parts split the distribution term by level, from the same pass
        same_terms, parts = model.log_prob_parts(x)
        levels = len(model.flow.latent_shapes)
        assert list(parts) == [f"log_pz.{i + 1}" for i in range(levels)]
        assert torch.allclose(sum(parts.values()), terms["log_pz"], atol=1e-10)
        for name in ("log_pz", "logdet"):
            assert torch.allclose(same_terms[name], terms[name], atol=1e-10)


def test_standard_prior_log_pz_is_the_normal_density_of_the_latents() -> None:
    model = _tiny("glow-reverse-standard-prior").double()
    model.initialize(_data(16))
    x = _data(3)
    z, _ = model.encode(x)
    normal = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=1)
    assert torch.allclose(model.log_prob_terms(x)["log_pz"], normal, atol=1e-10)


@pytest.mark.parametrize("case", ["glow-affine-lu", "cv-glow", "realnvp"])
def test_bits_per_dim_follows_the_stated_formula(case: str) -> None:
    model = _tiny(case)
    model.initialize(_data(16, dtype=torch.float32))
    _train(model)
    model.eval()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        bpd = model.bits_per_dim(images)
        terms = model.log_prob_terms(model.preprocess(images, dequantize=False))
    d = 1 * 8 * 8
    expected = -(terms["log_pz"] + terms["logdet"] - d * math.log(256.0)) / (d * math.log(2.0))
    assert torch.allclose(bpd, expected, atol=1e-5)


@pytest.mark.parametrize("case", ["glow-affine-lu", "cv-glow", "realnvp"])
def test_loading_a_checkpoint_never_reinitialises(case: str) -> None:
    model = _tiny(case)
    model.initialize(_data(16, dtype=torch.float32))
    _train(model)
    model.eval()
    x = _data(4, dtype=torch.float32)
    with torch.no_grad():
        reference = model.log_prob(x)
    loaded = _tiny(case)
    loaded.load_state_dict(model.state_dict())
    assert loaded.is_initialized
    loaded.train()
    with torch.no_grad():
        loaded.log_prob(10.0 * torch.randn(8, 1, 8, 8))  # would re-initialise a buggy ActNorm
        loaded.eval()
        assert torch.equal(loaded.log_prob(x), reference)


@pytest.mark.parametrize("case", ["glow-affine-lu", "cv-glow", "realnvp"])
def test_sampling(case: str) -> None:
    model = _tiny(case)
    model.initialize(_data(16, dtype=torch.float32))
    model.eval()
    samples = model.sample(6, temperature=0.7)
    assert samples.shape == (6, 1, 8, 8) and torch.isfinite(samples).all()
    assert model.sample_images(2).dtype == torch.uint8
    cold = model.sample(2, temperature=0.0)  # every latent at its prior mean
    assert torch.allclose(cold[0], cold[1])


def test_bf16_autocast_keeps_the_terms_in_float32() -> None:
    model = _tiny("glow-affine-lu")
    model.initialize(_data(16, dtype=torch.float32))
    _train(model)
    model.eval()
    x = _data(4, dtype=torch.float32)
    with torch.no_grad():
        fp32 = model.log_prob(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            terms = model.log_prob_terms(x)
    assert all(t.dtype == torch.float32 for t in terms.values())
    bf16 = terms["log_pz"] + terms["logdet"]
    gap_bits_per_dim = (bf16 - fp32).abs().max() / (64 * math.log(2.0))
    assert float(gap_bits_per_dim) < 0.01


def test_channels_last_gives_the_same_log_prob() -> None:
    model = _tiny("glow-affine-lu")
    model.initialize(_data(16, dtype=torch.float32))
    _train(model)
    model.eval()
    x = _data(4, dtype=torch.float32)
    with torch.no_grad():
        reference = model.log_prob(x)
        model = model.to(memory_format=torch.channels_last)
        out = model.log_prob(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, reference, atol=1e-4)


def test_prior_params_cover_every_latent() -> None:
    model = _tiny("glow-affine-lu")
    x = _data(3, dtype=torch.float32)
    params = model.prior_params(x)
    sizes = sum(m[0].numel() for m, _ in params)
    assert sizes == model.num_dims
    assert all(m.shape == s.shape for m, s in params)


def test_describe_records_the_hyper_parameters() -> None:
    info = _tiny("cv-glow").describe()
    assert info["name"] == "cv-glow"
    assert info["hparams"]["coupling"] == "additive"
    assert info["num_dims"] == 64
