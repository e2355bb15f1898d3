"""The layer-wise gradient norms of Dauncey et al. (2024): the statistic and the detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genood.models import build as build_model
from genood.ood.gradnorm import GradientNorms, ParameterGradients, _loop_norms, _vmap_norms
from genood.ood.statistics import Statistics

from .conftest import SHAPE, check_detector


def _tiny_glow() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("glow", SHAPE, levels=2, steps=2, hidden=8).eval()
    x = model.preprocess(torch.randint(0, 256, (16, *SHAPE), dtype=torch.uint8), dequantize=False)
    with torch.no_grad():
        model.log_prob(x)  # ActNorm's data-dependent initialisation
    return model


def test_batched_gradients_equal_one_backward_pass_per_image() -> None:
    model = _tiny_glow()
    names = [n for n, _ in model.named_parameters()]
    x = model.preprocess(torch.randint(0, 256, (5, *SHAPE), dtype=torch.uint8), dequantize=False)
    batched, looped = _vmap_norms(model, names)(x), _loop_norms(model, names)(x)
    assert set(batched) == set(names)
    for name in names:
        torch.testing.assert_close(batched[name], looped[name], rtol=1e-4, atol=1e-10)


def test_the_statistic_is_the_squared_norm_of_one_image_s_gradient(data) -> None:
    model = _tiny_glow()
    images = data["test"][:3]
    stats = ParameterGradients("grad", model).compute(images, Statistics())
    x = model.preprocess(torch.from_numpy(images[1:2]), dequantize=False)
    model.zero_grad()
    (-model.log_prob(x).sum()).backward()
    for name, p in model.named_parameters():
        expected = 0.0 if p.grad is None else float(p.grad.square().sum())
        assert stats[name][1] == pytest.approx(expected, rel=1e-4, abs=1e-12), name


def test_it_flags_obvious_outliers(model, data) -> None:
    check_detector(GradientNorms(model), data, ("noise", "constant"))


def test_a_layer_constant_on_the_fitting_images_is_dropped(model, data) -> None:
    detector = GradientNorms(model)
    stats = detector.statistics(data["fit"])
    stats["grad/frozen"] = np.zeros(len(data["fit"]))
    detector.fit(stats)
    assert "frozen" not in detector.layers_ and set(detector.layers_) == {"mean", "log_std"}
    with pytest.raises(ValueError, match="constant"):
        GradientNorms(model).fit({"grad/a": np.ones(10), "grad/b": np.zeros(10)})


def test_the_score_is_a_negative_gaussian_log_density(model, data) -> None:
    detector = GradientNorms(model).fit(data["fit"])
    stats = detector.statistics(data["test"][:4])
    logs = np.log(np.stack([stats[f"grad/{n}"] for n in detector.layers_], axis=1))
    assert detector.mean_ is not None and detector.std_ is not None
    density = -0.5 * ((logs - detector.mean_) / detector.std_) ** 2 - np.log(
        detector.std_ * np.sqrt(2 * np.pi)
    )
    np.testing.assert_allclose(detector.decision_function(stats), -density.sum(axis=1))
