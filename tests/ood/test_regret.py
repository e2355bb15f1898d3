"""Likelihood Regret: the batched optimisation equals a plain per-image loop, and its invariants."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import genood.ood as ood
from genood.densities import gaussian_log_prob
from genood.models import build as build_model
from genood.models.vae import VAE, gaussian_kl, gaussian_params
from genood.ood.regret import BETAS, LikelihoodRegret, image_generators, regret_batch

from .conftest import SHAPE

TINY = {"latent_dim": 3, "hidden": 4, "downsamples": 1, "num_mixtures": 1, "iw_samples": 4}


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    model = build_model("vae", SHAPE, **TINY).eval()
    assert isinstance(model, VAE)
    return model


def _reference(
    model: VAE, image: np.ndarray, steps: int, lr: float, samples: int, seed: int
) -> tuple[float, float]:
    """The authors' procedure, written out for one image: a deep copy of the encoder, Adam on
    its parameters, ``steps`` one-sample negative ELBOs, IWAE before and after (the same draws
    as the batched code: one generator per image, optimisation draws first)."""
    generator = image_generators(image[None], seed)[0]
    eps_opt = torch.randn(steps, model.latent_dim, generator=generator)
    eps_iw = torch.randn(samples, model.latent_dim, generator=generator)
    x = model.preprocess(torch.from_numpy(image[None]), dequantize=False)
    encoder = copy.deepcopy(model.encoder)

    def iwae() -> float:
        with torch.no_grad():
            mean, std = gaussian_params(encoder(x))
            z = mean + std * eps_iw  # (K, Z)
            log_px = model.mixture.log_prob(x.expand(samples, *x.shape[1:]), model.decode(z))
            log_pz = gaussian_log_prob(z, torch.zeros_like(z), std=torch.ones_like(z)).sum(-1)
            log_qz = gaussian_log_prob(z, mean, std=std).sum(-1)
            weights = log_px + log_pz - log_qz
            return float(torch.logsumexp(weights, 0) - math.log(samples))

    before = iwae()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, betas=BETAS, weight_decay=5e-5)
    for step in range(steps):
        mean, std = gaussian_params(encoder(x))
        z = mean + std * eps_opt[step : step + 1]
        log_px = model.mixture.log_prob(x, model.decode(z))
        kl = gaussian_kl(mean, std, torch.zeros_like(mean), torch.ones_like(std)).sum(-1)
        optimizer.zero_grad()
        (kl - log_px).sum().backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return before, iwae()


def test_the_batch_equals_a_loop_over_images(vae, data) -> None:
    images = np.concatenate([data["test"][:2], data["noise"][:1]])
    before, after = regret_batch(vae, images, steps=6, lr=1e-2, samples=5, seed=3)
    for i, image in enumerate(images):
        want_before, want_after = _reference(vae, image, steps=6, lr=1e-2, samples=5, seed=3)
        assert before[i] == pytest.approx(want_before, rel=1e-5, abs=1e-3)
        assert after[i] == pytest.approx(want_after, rel=1e-5, abs=1e-3)
    assert not np.allclose(after, before)  # the optimisation moved


def test_an_image_scores_the_same_in_any_batch(vae, data) -> None:
    images = data["test"][:4]
    together = np.subtract(*regret_batch(vae, images, steps=3, samples=3)[::-1])
    reversed_ = np.subtract(*regret_batch(vae, images[::-1].copy(), steps=3, samples=3)[::-1])
    alone = np.subtract(*regret_batch(vae, images[2:3], steps=3, samples=3)[::-1])
    np.testing.assert_allclose(together, reversed_[::-1], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-5, atol=1e-3)


def test_no_steps_no_regret(vae, data) -> None:
    before, after = regret_batch(vae, data["test"][:8], steps=0, samples=4)
    np.testing.assert_array_equal(before, after)  # common random numbers: exactly 0


def test_fitting_a_poor_encoder_raises_the_bound(data) -> None:
    # A decoder trained to use z, behind an encoder re-initialised at random: the encoder is far
    # from the best posterior, so fitting it to each image raises the bound. Not a theorem for a
    # stochastic optimiser on a sampled bound: asserted on most images, by a margin.
    torch.manual_seed(1)
    model = build_model("vae", SHAPE, **{**TINY, "hidden": 8})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train = torch.from_numpy(data["train"])
    for step in range(150):
        x = model.preprocess(train[(step * 64) % 1936 :][:64], dequantize=True)
        optimizer.zero_grad()
        (-model.elbo(x).mean()).backward()
        optimizer.step()
    model.eval()
    for layer in model.encoder.modules():
        if isinstance(layer, torch.nn.Conv2d | torch.nn.Linear):
            layer.reset_parameters()
    before, after = regret_batch(model, data["test"][:12], steps=30, lr=1e-2, samples=16)
    assert np.mean(after > before) >= 0.75 and np.median(after - before) > 1.0


def test_the_detector_reads_its_cached_pass(vae, data) -> None:
    detector = ood.build("regret:2:3", vae)
    assert isinstance(detector, LikelihoodRegret)
    assert (detector.steps, detector.samples) == (2, 3)
    stats = detector.statistics(data["test"][:6])
    key = "model/regret.n2.lr0.0002.k3.wd5e-05.seed0"
    np.testing.assert_allclose(stats[key], stats[f"{key}.after"] - stats[f"{key}.before"])
    passes = detector.store.passes
    detector.fit(data["test"][:6])
    assert detector.store.passes == passes  # the same images: read back, not optimised again
    np.testing.assert_array_equal(detector.decision_function(stats), stats[key])


def test_save_load_round_trip(vae, data, tmp_path) -> None:
    detector = ood.build("regret:2:2", vae).fit(data["fit"][:40]).calibrate(data["val"][:40], 0.1)
    detector.save(tmp_path / "d")
    loaded = ood.load(tmp_path / "d", model=vae)
    assert isinstance(loaded, LikelihoodRegret) and loaded.get_params() == {
        **detector.get_params(),
        "store": loaded.store,
    }
    batch = data["test"][:10]
    np.testing.assert_array_equal(
        loaded.decision_function(batch), detector.decision_function(batch)
    )


def test_what_is_refused_names_the_fix(model) -> None:
    with pytest.raises(TypeError, match="needs a VAE.*vae-fashion-mnist-cpu"):
        ood.build("regret", model)
    for bad in ("regret:x", "regret:1:0", "regret:1:2:3"):
        with pytest.raises(ValueError, match="regret"):
            ood.parse(bad)
