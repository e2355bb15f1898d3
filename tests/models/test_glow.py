"""Glow and CV-Glow specifics: the builder, constant volume, channel-mixing matrices."""

from __future__ import annotations

import pytest
import torch

from genood.flows.permutation import LUInvertibleConv1x1
from genood.models import build


def _images(n: int, shape: tuple[int, int, int] = (1, 8, 8)) -> torch.Tensor:
    return 0.3 * torch.rand(n, *shape) - 0.1


def test_tiny_model_from_the_issue() -> None:
    model = build("glow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=16)
    assert sum(p.numel() for p in model.parameters()) < 50_000
    assert len(model.channel_mixing_matrices()) == 4
    assert sum(isinstance(m, LUInvertibleConv1x1) for m in model.modules()) == 4


def test_unknown_hyper_parameter_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match=r"unknown hyper-parameter\(s\) \['depth'\].*levels=3"):
        build("glow", image_shape=(1, 8, 8), depth=4)
    with pytest.raises(TypeError, match="levels must be int"):
        build("glow", image_shape=(1, 8, 8), levels=2.5)


def test_bad_choices_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="permutation must be one of"):
        build("glow", image_shape=(1, 8, 8), levels=2, permutation="random")
    with pytest.raises(ValueError, match="coupling must be one of"):
        build("glow", image_shape=(1, 8, 8), levels=2, coupling="spline")
    with pytest.raises(ValueError, match="divisible by 8.*28x28"):
        build("glow", image_shape=(1, 28, 28), levels=3, steps=1, hidden=4)
    with pytest.raises(ValueError, match="levels must be >= 1"):
        build("glow", image_shape=(1, 8, 8), levels=0)


def test_two_level_glow_needs_no_padding_at_28x28() -> None:
    model = build("glow", image_shape=(1, 28, 28), levels=2, steps=1, hidden=4)
    assert model.num_dims == 784
    assert model.flow.latent_shapes == [(2, 14, 14), (8, 7, 7)]


def test_cv_glow_is_additive_only() -> None:
    with pytest.raises(ValueError, match="constant-volume"):
        build("cv-glow", image_shape=(1, 8, 8), levels=2, coupling="affine")
    model = build(
        "cv-glow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8, coupling="additive"
    )
    assert model.hparams["coupling"] == "additive"


@pytest.mark.parametrize("permutation", ["lu", "conv", "shuffle"])
def test_cv_glow_volume_term_is_identical_for_every_input(permutation: str) -> None:
    model = build(
        "cv-glow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8, permutation=permutation
    )
    model.initialize(_images(16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = -model.log_prob(_images(16)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        inputs = torch.cat([_images(4), torch.randn(4, 1, 8, 8), torch.zeros(1, 1, 8, 8)])
        terms = model.log_prob_terms(inputs)
    logdet = terms["logdet"]
    assert torch.equal(logdet, logdet[:1].expand_as(logdet))
    assert float(logdet[0]) != 0.0  # ActNorm and the 1x1 convolutions do change the volume
    assert terms["log_pz"].unique().numel() == inputs.shape[0]


def test_glow_volume_term_depends_on_the_input() -> None:
    model = build("glow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8)
    model.initialize(_images(16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = -model.log_prob(_images(16)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logdet = model.log_prob_terms(_images(4))["logdet"]
    assert logdet.unique().numel() == 4


def test_channel_mixing_matrices() -> None:
    model = build("cv-glow", image_shape=(1, 8, 8), levels=2, steps=3, hidden=8)
    model.initialize(_images(16) * 5)
    matrices = model.channel_mixing_matrices()
    assert [m.shape for m in matrices] == [(4, 4)] * 3 + [(8, 8)] * 3
    assert [m.shape for m in model.channel_mixing_matrices(level=1)] == [(8, 8)] * 3
    raw = model.channel_mixing_matrices(fold_actnorm=False)
    scales = model.actnorm_scales()
    for folded, weight, scale in zip(matrices, raw, scales):
        assert torch.allclose(folded, weight @ torch.diag(scale), atol=1e-6)
    # The folded matrix is the step's linear part: it maps x (minus the bias path) pixelwise.
    step = model.flow.levels[0].layers[1]
    x = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        mixed, _ = step.mixing(step.actnorm(x)[0])
        bias_only, _ = step.mixing(step.actnorm(torch.zeros_like(x))[0])
    linear = torch.einsum("ij,bjhw->bihw", matrices[0], x)
    assert torch.allclose(mixed - bias_only, linear, atol=1e-5)
    with pytest.raises(ValueError, match="level must be in"):
        model.channel_mixing_matrices(level=2)


def test_permutation_mixing_matrix_is_a_permutation() -> None:
    model = build("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=4, permutation="reverse")
    (matrix,) = model.channel_mixing_matrices(fold_actnorm=False)
    assert torch.equal(matrix, torch.eye(4).flip(0))
