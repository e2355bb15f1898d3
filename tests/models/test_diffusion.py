"""The variational diffusion model: the bound's terms, its value against known entropies,
deterministic scoring, numerics, shapes, sampling, and save / load / resume through the trainer."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))  # the training tests' helpers

from train_helpers import assert_bitwise_equal, final_parameters, tiny_config, write_images

from genood.models import build
from genood.models.diffusion import TERMS, DiffusionModel
from genood.train import fit, load_run, score_dataset, scores_path

SHAPE = (1, 8, 8)


def tiny(shape: tuple[int, int, int] = SHAPE, **hparams: object) -> DiffusionModel:
    options = {"hidden": 8, "levels": 1, "score_samples": 8, "sample_steps": 8, **hparams}
    return build("diffusion", shape, **options)  # type: ignore[return-value]


def images(n: int, shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)


def scored(model: DiffusionModel, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.inference_mode():
        return model.log_prob_terms(model.preprocess(batch))


# ----------------------------------------------------------------------------- the terms
def test_terms_are_named_non_positive_and_sum_to_the_bound() -> None:
    model = tiny()
    batch = images(5)
    terms = scored(model, batch)
    assert tuple(terms) == TERMS
    for value in terms.values():
        assert value.shape == (5,) and torch.isfinite(value).all() and (value <= 0).all()
    with torch.inference_mode():
        bound = model.log_prob(model.preprocess(batch))
        bpd = model.bits_per_dim(batch)
    torch.testing.assert_close(bound, sum(terms.values()))
    torch.testing.assert_close(bpd, -bound / (64 * math.log(2)))  # log_scale = 0: a log-mass
    assert model.is_bound and "upper bound" in str(model.describe()["likelihood"])

    model.train()
    train_terms = model.log_prob_terms(model.preprocess(batch))
    assert tuple(train_terms) == TERMS and train_terms["diffusion"].requires_grad


def test_gradients_are_finite_on_black_and_white_images() -> None:
    model = tiny().train()  # the reconstruction window runs past both edge levels
    batch = torch.zeros(4, *SHAPE, dtype=torch.uint8)
    batch[:2] = 255
    model.log_prob(model.preprocess(batch)).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_the_discrete_time_bound_has_the_same_terms() -> None:
    terms = scored(tiny(timesteps=10), images(3))
    assert tuple(terms) == TERMS and all(torch.isfinite(v).all() for v in terms.values())
    assert "T=10 steps" in str(tiny(timesteps=10).describe()["likelihood"])


def test_the_reconstruction_window_equals_the_full_softmax() -> None:
    for gamma_min in (-13.3, -9.0, -4.0):  # a window of a few levels ... all 256
        model = tiny(gamma_min=gamma_min)
        x = model.preprocess(images(4))
        x[0, 0, 0, :2] = torch.tensor([-1.0, 1.0])  # the edge levels
        eps_0 = 3.0 * torch.randn_like(x)
        with torch.no_grad():
            scale = torch.exp(0.5 * model.gamma(torch.zeros(())))
            z = x + scale * eps_0
            logits = -0.5 * ((z[..., None] - model.bin_values) / scale).square()
            index = torch.round((x + 1) * 127.5).long()[..., None]
            full = (logits.gather(-1, index)[..., 0] - logits.logsumexp(-1)).flatten(1).sum(1)
            torch.testing.assert_close(
                model.reconstruction_term(x, eps_0), full, rtol=1e-5, atol=1e-2
            )


def test_the_schedule_is_increasing_with_its_closed_form_derivative() -> None:
    schedule = tiny().gamma
    t = torch.linspace(0, 1, 101, requires_grad=True)
    gamma = schedule(t)
    assert (gamma.diff() > 0).all()
    (autograd,) = torch.autograd.grad(gamma.sum(), t)
    torch.testing.assert_close(schedule.derivative(t.detach()), autograd)
    for kind in ("scalar", "fixed"):
        line = tiny(schedule=kind).gamma
        torch.testing.assert_close(line(torch.tensor([0.0, 1.0])), torch.tensor([-13.3, 5.0]))
        torch.testing.assert_close(line.derivative(torch.rand(3)), torch.full((3,), 18.3))


# ----------------------------------------------------------------------------- known entropies
def test_untrained_bound_on_uniform_noise_is_finite_and_at_least_8_bits() -> None:
    model = tiny((3, 8, 8), score_samples=16)
    with torch.inference_mode():
        bpd = model.bits_per_dim(images(64, (3, 8, 8)))
    assert torch.isfinite(bpd).all()
    assert bpd.mean() >= 8.0


def discretised_gaussian(mean: float, std: float) -> torch.Tensor:
    """The 256 probabilities of ``round(N(mean, std^2))`` clipped to ``0..255``."""
    edges = torch.arange(257, dtype=torch.float64) - 0.5
    cdf = 0.5 * (1 + torch.erf((edges - mean) / (std * math.sqrt(2))))
    cdf[0], cdf[-1] = 0.0, 1.0
    return cdf.diff()


@pytest.mark.slow
def test_bound_stays_above_a_known_entropy_and_approaches_it_with_training() -> None:
    shape = (1, 4, 4)
    probs = discretised_gaussian(128.0, 12.0)
    entropy = float(-(probs * probs.clamp(min=1e-300).log2()).sum())  # bits per sub-pixel
    generator = torch.Generator().manual_seed(1)

    def draw(n: int) -> torch.Tensor:
        flat = torch.multinomial(probs.float(), n * 16, replacement=True, generator=generator)
        return flat.view(n, *shape).to(torch.uint8)

    model = tiny(shape, levels=0)

    def expected_bpd() -> tuple[float, float]:
        """The bound on fresh data with independent draws (train mode: one draw per image)."""
        with torch.no_grad():
            bpd = model.bits_from_log_prob(model.log_prob(model.preprocess(draw(8192))))
        return float(bpd.mean()), float(bpd.std() / math.sqrt(len(bpd)))

    model.train()
    before, before_se = expected_bpd()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(200):
        loss = model.bits_from_log_prob(model.log_prob(model.preprocess(draw(256)))).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after, after_se = expected_bpd()
    assert before > entropy - 3 * before_se and after > entropy - 3 * after_se
    assert after - entropy < 0.35 * (before - entropy)  # about 2.2 -> 0.5 bits/dim


# ----------------------------------------------------------------------------- determinism
def test_scoring_is_deterministic_per_image_and_leaves_the_global_rng_alone() -> None:
    model = tiny(score_batch=12)  # 8 draws x 5 images in chunks
    batch = images(5)
    state = torch.get_rng_state()
    first = scored(model, batch)
    assert torch.equal(torch.get_rng_state(), state)
    again = scored(model, batch)
    alone = scored(model, batch[2:3])
    for name in TERMS:
        assert torch.equal(first[name], again[name])
        torch.testing.assert_close(alone[name], first[name][2:3])  # not the batch's business
    other = scored(tiny(score_batch=12, score_seed=1), batch)
    assert not torch.equal(other["diffusion"], first["diffusion"])


def test_a_non_finite_bound_names_the_timestep() -> None:
    model = tiny()
    with torch.no_grad():
        model.net.conv_out.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"diffusion term .* timestep t=0\.\d+"):
        scored(model, images(2))


# ----------------------------------------------------------------------------- shapes, sampling
def test_shapes_the_network_cannot_take_are_refused_with_the_sizes_that_work() -> None:
    with pytest.raises(ValueError, match=r"divisible by 4, got 30x30: sizes that work are 4, 8"):
        build("diffusion", (1, 30, 30))
    with pytest.raises(ValueError, match=r"levels to one that divides them: \[0, 1\]"):
        build("diffusion", (1, 30, 30))
    assert build("diffusion", (1, 30, 30), levels=1, hidden=8).image_shape == (1, 30, 30)
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        build("diffusion", SHAPE, width=3)
    with pytest.raises(ValueError, match="schedule"):
        tiny(schedule="cosine")


def test_samples_are_images() -> None:
    model = tiny((3, 8, 8)).eval()
    samples = model.sample_images(3, temperature=0.8)
    assert samples.shape == (3, 3, 8, 8) and samples.dtype == torch.uint8


# ----------------------------------------------------------------------------- save, load, resume
def test_scoring_settings_load_into_the_same_parameters(tmp_path: Path) -> None:
    model = tiny()
    torch.save(model.state_dict(), tmp_path / "diffusion.pt")
    other = tiny(score_samples=3, score_batch=5, score_seed=7, sample_steps=2, timesteps=4)
    other.load_state_dict(torch.load(tmp_path / "diffusion.pt"))  # strict: same parameters
    restored = tiny()
    restored.load_state_dict(torch.load(tmp_path / "diffusion.pt"))
    batch = images(3)
    for name, value in scored(model, batch).items():
        assert torch.equal(scored(restored, batch)[name], value)


def _config(train: str, steps: int) -> object:
    config = tiny_config(train, steps=steps, checkpoint_every=2)
    config.model.name = "diffusion"
    config.model.hparams = {"hidden": 8, "levels": 1, "score_samples": 4}
    return config


@pytest.mark.slow
def test_trains_resumes_bitwise_and_scores_with_changed_settings(tmp_path: Path) -> None:
    train = write_images(tmp_path / "train.npz", 24)
    fit(_config(train, 4), tmp_path / "whole", progress=False)  # type: ignore[arg-type]
    fit(_config(train, 2), tmp_path / "split", progress=False)  # type: ignore[arg-type]
    fit(_config(train, 4), tmp_path / "split", progress=False)  # type: ignore[arg-type]
    assert_bitwise_equal(final_parameters(tmp_path / "whole"), final_parameters(tmp_path / "split"))

    loaded = load_run(tmp_path / "whole", hparams={"score_samples": 2, "score_seed": 3})
    assert loaded.model.hp.score_samples == 2  # type: ignore[attr-defined]
    spec = write_images(tmp_path / "other.npz", 5, seed=3)
    scores = score_dataset(loaded, spec, progress=False)
    assert np.isfinite(scores["bits_per_dim"]).all() and set(TERMS) <= set(scores)
    with np.load(scores_path(tmp_path / "whole", "npz", "other")) as saved:
        described = json.loads(str(saved["model"]))
    assert described["score_samples"] == 2 and described["score_seed"] == 3
    with pytest.raises(ValueError, match="change the parameters"):
        load_run(tmp_path / "whole", hparams={"hidden": 16})


# ----------------------------------------------------------------------------- the configs
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    ("name", "shape"),
    [("diffusion-fashion-mnist-cpu.toml", (1, 28, 28)), ("diffusion-cifar10.toml", (3, 32, 32))],
)
def test_the_shipped_configs_build_their_model(name: str, shape: tuple[int, int, int]) -> None:
    from genood import config

    run = config.load(CONFIGS / name)
    assert run.model.name == "diffusion"
    model = build("diffusion", shape, **run.model.hparams)
    assert model.num_dims == math.prod(shape) and model.is_bound
    if name.endswith("-cpu.toml"):
        assert run.train.time_budget_s == 900  # the stated 15 minutes
    else:
        assert run.model.hparams["hidden"] == 128  # the authors' width
