"""The discretised logistic (mixture) likelihood: normalisation, exact conditionals, sampling."""

from __future__ import annotations

import pytest
import torch

from genood.models.discretized import (
    DiscreteLikelihoodModel,
    DiscretizedLogisticMixture,
    discretized_logistic_log_prob,
    to_bin_centres,
)

BINS = torch.arange(256, dtype=torch.float64) / 127.5 - 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logistic_masses_sum_to_one_over_the_256_bins(dtype: torch.dtype) -> None:
    # means inside, at and far outside [-1, 1]; scales from the floor e^-7 to very wide
    means = torch.tensor([-3.0, -1.0, -0.3, 0.0, 0.004, 0.7, 1.0, 2.5], dtype=dtype)
    log_scales = torch.tensor([-7.0, -5.0, -2.0, 0.0, 3.0, -9.0, -4.5, 1.0], dtype=dtype)
    x = BINS.to(dtype)[:, None]
    log_masses = discretized_logistic_log_prob(x, means, log_scales)  # (256, 8)
    assert torch.isfinite(log_masses).all()
    total = torch.logsumexp(log_masses.double(), dim=0)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-5, rtol=0)


def test_logistic_mass_matches_the_cdf_difference() -> None:
    mean, log_scale = torch.tensor(0.1, dtype=torch.float64), torch.tensor(-2.0).double()
    x = BINS[100]
    logistic = torch.distributions.TransformedDistribution(
        torch.distributions.Uniform(torch.tensor(0.0).double(), torch.tensor(1.0).double()),
        [
            torch.distributions.SigmoidTransform().inv,
            torch.distributions.AffineTransform(mean, log_scale.exp()),
        ],
    )
    expected = logistic.cdf(x + 1 / 255) - logistic.cdf(x - 1 / 255)
    got = discretized_logistic_log_prob(x, mean, log_scale).exp()
    torch.testing.assert_close(got, expected)


def random_params(mixture: DiscretizedLogisticMixture, b: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(b, mixture.num_params, h, w, dtype=torch.float64) * 1.5


@pytest.mark.parametrize("channels", [1, 3])
def test_each_channel_conditional_sums_to_one(channels: int) -> None:
    mixture = DiscretizedLogisticMixture(channels, num_mixtures=4)
    params = random_params(mixture, 1, 1, 1).expand(256, -1, -1, -1)
    context = BINS[torch.randint(0, 256, (channels,))]
    for c in range(channels):
        x = context.repeat(256, 1)
        x[:, c] = BINS  # every value of channel c, the earlier channels fixed
        cond = mixture.conditional_log_probs(x[:, :, None, None], params)[:, c, 0, 0]
        total = torch.logsumexp(cond, dim=0)
        assert abs(total.item()) < 1e-5, f"channel {c} conditional sums to {total.exp().item()}"


def test_rgb_joint_sums_to_one_over_all_colours_of_a_pixel() -> None:
    mixture = DiscretizedLogisticMixture(3, num_mixtures=3)
    params = random_params(mixture, 1, 1, 1)
    levels = BINS[[0, 97, 255]]  # summing g and b out of the joint must give p(r)
    rows = []
    for r in levels:
        x = torch.stack([r.expand(256 * 256), BINS.repeat_interleave(256), BINS.repeat(256)], 1)
        joint = mixture.log_prob(x[:, :, None, None], params.expand(len(x), -1, -1, -1))
        r_marginal = torch.logsumexp(joint, dim=0)
        r_cond = mixture.conditional_log_probs(x[:1, :, None, None], params)[0, 0, 0, 0]
        rows.append((r_marginal, r_cond))
    for marginal, conditional in rows:  # sum over g, b of the joint = p(r)
        torch.testing.assert_close(marginal, conditional, atol=1e-6, rtol=0)


def test_conditionals_sum_to_the_joint_and_ignore_later_channels() -> None:
    mixture = DiscretizedLogisticMixture(3, num_mixtures=5)
    params = random_params(mixture, 2, 3, 3)
    x = BINS[torch.randint(0, 256, (2, 3, 3, 3))].requires_grad_()
    cond = mixture.conditional_log_probs(x, params)
    torch.testing.assert_close(cond.flatten(1).sum(1), mixture.log_prob(x, params))
    for c in range(3):
        (grad,) = torch.autograd.grad(cond[:, c].sum(), x, retain_graph=True)
        assert (grad[:, c + 1 :] == 0).all(), f"channel {c} depends on a later channel"
        assert (grad[:, : c + 1] != 0).any()


def test_sampling_follows_the_masses() -> None:
    mixture = DiscretizedLogisticMixture(1, num_mixtures=3)
    params = random_params(mixture, 1, 1, 1).float()
    params[:, 3:6] = -2.5  # narrow components, so that the histogram has structure
    n = 40_000
    gen = torch.Generator().manual_seed(1)
    x = mixture.sample(params.expand(n, -1, -1, -1), generator=gen)
    assert torch.equal(x, to_bin_centres(x)), "samples must lie on bin centres"
    counts = torch.bincount(torch.round((x.flatten() + 1) * 127.5).long(), minlength=256)
    probs = mixture.conditional_log_probs(
        BINS.float()[:, None, None, None], params.expand(256, -1, -1, -1)
    )
    total_variation = 0.5 * (counts / n - probs.flatten().exp()).abs().sum()
    assert total_variation < 0.03


def test_bad_parameter_shapes_are_refused() -> None:
    mixture = DiscretizedLogisticMixture(3, num_mixtures=2)
    assert mixture.num_params == 2 * (1 + 6 + 3)
    with pytest.raises(ValueError, match="mixture parameters"):
        mixture.log_prob(torch.zeros(1, 3, 2, 2), torch.zeros(1, 7, 2, 2))
    with pytest.raises(ValueError, match="expected x"):
        mixture.log_prob(torch.zeros(1, 1, 2, 2), torch.zeros(1, 20, 2, 2))
    with pytest.raises(ValueError):
        DiscretizedLogisticMixture(0, 2)


class _Uniform(DiscreteLikelihoodModel):
    """256 equally likely levels per sub-pixel: exactly 8 bits/dim."""

    def log_prob_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"log_px": torch.full(x.shape[:1], -self.num_dims * torch.log(torch.tensor(256.0)))}


def test_discrete_models_see_bin_centres_and_ignore_dequantisation() -> None:
    model = _Uniform((1, 2, 2))
    images = torch.tensor([[[[0, 1], [128, 255]]]], dtype=torch.uint8)
    x = model.preprocess(images, dequantize=True)
    assert torch.equal(x, model.preprocess(images, dequantize=False))
    torch.testing.assert_close(
        x.flatten(), torch.tensor([-1.0, 1 / 127.5 - 1, 128 / 127.5 - 1, 1.0])
    )
    assert torch.equal(model.postprocess(x), images)
    assert model.log_scale == 0.0
    torch.testing.assert_close(model.bits_per_dim(images), torch.tensor([8.0]))
    with pytest.raises(TypeError, match="uint8"):
        model.preprocess(images.float(), dequantize=False)
