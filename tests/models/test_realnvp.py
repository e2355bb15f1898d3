"""RealNVP's builder and architecture."""

from __future__ import annotations

import pytest
import torch

from genood.flows.masks import MaskedAffineCoupling
from genood.models import build


def test_architecture_follows_the_paper() -> None:
    model = build("realnvp", image_shape=(1, 28, 28), levels=3, steps=3, hidden=4, blocks=1)
    couplings = [m for m in model.modules() if isinstance(m, MaskedAffineCoupling)]
    # 3 checkerboard + 3 channel per scale, 4 checkerboard at the last scale.
    assert len(couplings) == 6 + 6 + 4
    assert model.flow.latent_shapes == [(2, 14, 14), (4, 7, 7), (4, 7, 7)]


def test_standard_normal_prior_by_default() -> None:
    model = build("realnvp", image_shape=(1, 8, 8), levels=2, steps=1, hidden=4, blocks=0)
    assert model.hparams["learn_prior"] is False
    assert not any("prior" in name for name, _ in model.named_parameters())


def test_realnvp_has_no_channel_mixing_matrices() -> None:
    model = build("realnvp", image_shape=(1, 8, 8), levels=2, steps=1, hidden=4, blocks=0)
    with pytest.raises(ValueError, match="no Glow steps"):
        model.channel_mixing_matrices()


def test_bad_hyper_parameters_are_refused() -> None:
    with pytest.raises(TypeError, match="permutation"):
        build("realnvp", image_shape=(1, 8, 8), permutation="lu")
    with pytest.raises(ValueError, match="coupling must be one of"):
        build("realnvp", image_shape=(1, 8, 8), coupling="additive")
    with pytest.raises(ValueError, match="divisible by 4"):
        build("realnvp", image_shape=(1, 6, 6), levels=3)


def test_log_prob_is_finite_on_images() -> None:
    model = build("realnvp", image_shape=(1, 8, 8), levels=2, steps=1, hidden=4, blocks=1)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    model.initialize(model.preprocess(images, dequantize=True))
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model.bits_per_dim(images)).all()
