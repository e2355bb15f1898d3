"""The convolutional VAE: ordered bounds, the train / eval term contract, training, save / resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genood.models import build
from genood.models.vae import VAE, gaussian_kl, log_mean_exp


def tiny(image_shape: tuple[int, int, int] = (1, 6, 6), **hparams: object) -> VAE:
    options = {"latent_dim": 4, "hidden": 8, "num_mixtures": 2, "iw_samples": 8, **hparams}
    return build("vae", image_shape, **options)  # type: ignore[return-value]


def images(n: int, shape: tuple[int, int, int] = (1, 6, 6)) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8)


def sharpened(model: VAE) -> VAE:
    """Make the decoder lean hard on z, so that q(z|x) is far from the true posterior and the
    bounds are visibly apart."""
    with torch.no_grad():
        model.decoder_in.weight.mul_(10)
    return model.eval()


def test_gaussian_helpers_match_torch_distributions() -> None:
    m1, s1, m2, s2 = torch.randn(5), torch.rand(5) + 0.1, torch.randn(5), torch.rand(5) + 0.1
    q, p = torch.distributions.Normal(m1, s1), torch.distributions.Normal(m2, s2)
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), torch.distributions.kl_divergence(q, p))
    w = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    torch.testing.assert_close(log_mean_exp(w), torch.log(w.exp().mean(0)))


def test_bounds_are_ordered_elbo_below_iwae_nondecreasing_in_k() -> None:
    model = sharpened(tiny())
    x = model.preprocess(images(32), dequantize=False)
    repeats = 8
    with torch.no_grad():
        elbo = model.elbo(x, samples=200).mean()
        iwae = {
            k: torch.stack([model.iwae_bound(x, k) for _ in range(repeats)]) for k in (1, 8, 64)
        }
    mean = {k: v.mean() for k, v in iwae.items()}
    stderr = {k: v.mean(dim=1).std() / math.sqrt(repeats) for k, v in iwae.items()}
    # IWAE_1 is an unbiased estimate of the ELBO; then the bound tightens with K
    assert abs(mean[1] - elbo) < 4 * stderr[1] + 0.05
    assert mean[1] < mean[8] < mean[64]
    assert elbo < mean[64] - 4 * stderr[64]


def test_eval_terms_sum_to_the_scoring_bound_and_train_terms_to_the_elbo() -> None:
    model = tiny(iw_samples=16).eval()
    x = model.preprocess(images(4), dequantize=False)
    torch.manual_seed(5)
    terms = model.log_prob_terms(x)
    assert list(terms) == ["log_px_given_z", "neg_kl", "iwae_gap"]
    torch.manual_seed(5)  # the same 16 draws
    torch.testing.assert_close(sum(terms.values()), model.iwae_bound(x, 16))
    assert (terms["neg_kl"] <= 0).all()

    model.score_bound = "elbo"
    assert list(model.log_prob_terms(x)) == ["log_px_given_z", "neg_kl"]

    model.train()
    train_terms = model.log_prob_terms(x)
    assert list(train_terms) == ["log_px_given_z", "neg_kl"]
    assert train_terms["log_px_given_z"].requires_grad


def test_kl_warmup_adds_a_visible_bonus_and_counts_passes() -> None:
    model = tiny(kl_warmup_steps=4).train()
    x = model.preprocess(images(4), dequantize=True)
    first = model.log_prob_terms(x)
    # beta = 0 on the first pass: the bonus cancels the KL exactly
    torch.testing.assert_close(first["kl_warmup_bonus"], -first["neg_kl"])
    for _ in range(3):
        model.log_prob_terms(x)
    assert int(model.train_passes) == 4 and model.kl_weight() == 1.0
    assert "kl_warmup_bonus" not in model.log_prob_terms(x)
    with torch.no_grad():  # passes without gradients (evaluation in train mode) do not count
        model.log_prob_terms(x)
    assert int(model.train_passes) == 5


@pytest.mark.parametrize("channels", [1, 3])
def test_trains_a_few_steps_on_synthetic_data(channels: int) -> None:
    shape = (channels, 8, 8)
    model = tiny(shape)
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


def test_bits_per_dim_on_tiny_data_is_the_stated_formula_and_an_upper_bound() -> None:
    model = tiny(iw_samples=4).eval()
    batch = images(3)
    torch.manual_seed(1)
    bpd = model.bits_per_dim(batch)
    torch.manual_seed(1)
    log_p = model.log_prob(model.preprocess(batch, dequantize=False))
    torch.testing.assert_close(bpd, -log_p / (36 * math.log(2)))
    assert model.is_bound and "upper bound" in str(model.describe()["likelihood"])
    assert ((bpd > 4) & (bpd < 12)).all()


def test_samples_are_images() -> None:
    model = tiny((3, 8, 8)).eval()
    samples = model.sample_images(5, temperature=0.7)
    assert samples.shape == (5, 3, 8, 8) and samples.dtype == torch.uint8


def test_scoring_is_chunked_to_bound_memory() -> None:
    model = tiny(iw_samples=12, iw_batch=7).eval()  # 2 samples x 3 images per pass
    x = model.preprocess(images(3), dequantize=False)
    draws = model.draws(x, 12)
    assert draws.log_px_given_z.shape == draws.kl["kl"].shape == draws.log_weight.shape == (12, 3)
    assert torch.isfinite(draws.log_weight).all()
    # every sample is a fresh draw: the 12 weights of an image are not repeats of one chunk
    assert draws.log_weight[:, 0].unique().numel() == 12


def test_save_and_resume(tmp_path: Path) -> None:
    model = tiny(kl_warmup_steps=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = images(8)
    loss = -model.log_prob(model.preprocess(batch, True)).mean()
    loss.backward()
    opt.step()
    torch.save(model.state_dict(), tmp_path / "vae.pt")
    restored = tiny(kl_warmup_steps=10)
    restored.load_state_dict(torch.load(tmp_path / "vae.pt"))
    assert int(restored.train_passes) == 1  # the warm-up resumes where it stopped
    model.eval()
    restored.eval()
    x = model.preprocess(batch, dequantize=False)
    torch.manual_seed(4)
    a = model.log_prob(x)
    torch.manual_seed(4)
    torch.testing.assert_close(restored.log_prob(x), a)


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="score_bound"):
        tiny(score_bound="exact")
    with pytest.raises(ValueError, match="iw_samples"):
        tiny(iw_samples=0)
    with pytest.raises(ValueError, match="at least one"):
        tiny().iwae_bound(torch.zeros(1, 1, 6, 6), 0)


def test_free_nats_floor_each_latent_unit() -> None:
    model = tiny(free_nats=1e4, free_nats_steps=1).train()
    x = model.preprocess(images(3), True)
    terms = model.log_prob_terms(x)
    floor = 1e4  # split over the latent units: the layer's budget in all
    torch.testing.assert_close(sum(terms.values()), terms["log_px_given_z"] - floor)
    assert model.free_nats_now() == 0.0 and "free_nats_penalty" not in model.log_prob_terms(x)
