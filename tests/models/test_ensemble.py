"""The ensemble likelihood model: mean log-likelihood, per-member values, mixture, checks."""

from __future__ import annotations

import math

import pytest
import torch

from genood.models import build
from genood.models.ensemble import Ensemble
from genood.models.scoring import score_images


def _glow(seed: int, shape: tuple[int, int, int] = (1, 8, 8)):
    torch.manual_seed(seed)
    model = build("glow", image_shape=shape, levels=2, steps=2, hidden=16)
    # one data-dependent pass so that ActNorm is initialised differently per member
    with torch.no_grad():
        model.log_prob(
            model.preprocess(torch.randint(0, 256, (16, *shape), dtype=torch.uint8), True)
        )
    return model.eval()


@pytest.fixture
def members():
    return [_glow(seed) for seed in range(3)]


@pytest.fixture
def images():
    return torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)


def test_mean_log_prob_is_the_average_of_members(members, images) -> None:
    ensemble = Ensemble(members)
    x = ensemble.preprocess(images, dequantize=False)
    with torch.no_grad():
        per_member = ensemble.member_log_probs(x)
        terms = ensemble.log_prob_terms(x)
        expected = torch.stack([m.log_prob(x) for m in members])
    assert per_member.shape == (3, 10)
    torch.testing.assert_close(per_member, expected)
    assert list(terms) == ["mean_log_prob"]
    torch.testing.assert_close(terms["mean_log_prob"], expected.mean(dim=0))


def test_bits_per_dim_and_scoring_follow_the_mean(members, images) -> None:
    ensemble = Ensemble(members)
    scores = score_images(ensemble, images.numpy())
    member_bits = torch.stack([m.bits_per_dim(images) for m in members]).detach()
    torch.testing.assert_close(
        torch.from_numpy(scores["bits_per_dim"]).float(), member_bits.mean(dim=0)
    )
    assert ensemble.is_bound and ensemble.log_scale == members[0].log_scale


def test_mixture_log_prob_is_bounded_below_by_the_mean(members, images) -> None:
    ensemble = Ensemble(members)
    x = ensemble.preprocess(images, dequantize=False)
    with torch.no_grad():
        mixture = ensemble.mixture_log_prob(x)
        mean = ensemble.log_prob(x)
        per_member = ensemble.member_log_probs(x)
    assert torch.all(mixture >= mean - 1e-4)  # Jensen
    torch.testing.assert_close(mixture, per_member.logsumexp(0) - math.log(3))


def test_sampling_draws_from_members(members) -> None:
    ensemble = Ensemble(members)
    torch.manual_seed(0)
    samples = ensemble.sample_images(12)
    assert samples.shape == (12, 1, 8, 8) and samples.dtype == torch.uint8


def test_describe_and_len(members) -> None:
    ensemble = Ensemble(members)
    assert len(ensemble) == 3
    assert ensemble.describe()["members"] == 3
    assert ensemble.describe()["parameters"] == 3 * members[0].describe()["parameters"]


def test_members_must_agree(members) -> None:
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble(members[:1])
    with pytest.raises(ValueError, match=r"member 1 sees images of shape \(1, 16, 16\)"):
        Ensemble([members[0], _glow(5, (1, 16, 16))])
    with pytest.raises(TypeError, match="not a genood LikelihoodModel"):
        Ensemble([members[0], torch.nn.Linear(2, 2)])
    pixelcnn = build("pixelcnn", image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="not comparable"):
        Ensemble([members[0], pixelcnn])
