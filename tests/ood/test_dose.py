"""Density of states: a joint KDE over the model's terms and the codec's length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import gaussian_kde

from genood.models import build
from genood.ood import DensityOfStates, Likelihood, compressed_bits

from .conftest import SHAPE, check_detector, needs_imagecodecs


@needs_imagecodecs
def test_statistics_are_the_models_terms_and_the_codec(model, data) -> None:
    detector = DensityOfStates(model, codec="jpegxl").fit(data["fit"][:200])
    assert detector.statistics_ == ["log_pz", "codec_bits_per_dim"]
    values = detector.candidates(detector.statistics(data["test"][:20]))
    expected = compressed_bits(data["test"][:20], "jpegxl") / 64
    np.testing.assert_allclose(values["codec_bits_per_dim"], expected)
    assert DensityOfStates(model, codec=None).fit(data["fit"]).statistics_ == ["log_pz"]
    # PNG stores 8x8 images uncompressed: a constant length, dropped as uninformative
    assert DensityOfStates(model, codec="png").fit(data["fit"]).dropped_ == ["codec_bits_per_dim"]


@needs_imagecodecs
def test_score_is_minus_the_log_density_of_the_statistics(model, data) -> None:
    detector = DensityOfStates(model, codec="jpegxl").fit(data["fit"][:200])
    fit_values = detector.candidates(detector.statistics(data["fit"][:200]))
    kde = gaussian_kde(np.stack([fit_values["log_pz"], fit_values["codec_bits_per_dim"]]))
    test_values = detector.candidates(detector.statistics(data["test"][:30]))
    expected = -kde.logpdf(np.stack([test_values["log_pz"], test_values["codec_bits_per_dim"]]))
    np.testing.assert_allclose(detector.decision_function(data["test"][:30]), expected)


def test_detects_and_meets_its_fpr(model, data) -> None:
    check_detector(DensityOfStates(model, codec="png"), data, ood=("noise", "constant"))


def test_catches_the_too_likely_mode_the_likelihood_accepts(model) -> None:
    torch.manual_seed(0)
    samples = model.sample_images(1500).numpy()
    mode = model.postprocess(model.mean.detach()[None].expand(20, -1, -1, -1)).numpy()
    dose = DensityOfStates(model, codec=None).fit(samples[:500]).calibrate(samples[500:], 0.05)
    likelihood = Likelihood(model).fit(samples[:500]).calibrate(samples[500:], 0.05)
    assert not likelihood.predict(mode).any()
    assert dose.predict(mode).all()


def test_flow_terms_and_a_constant_volume_term_is_dropped(data) -> None:
    torch.manual_seed(0)
    glow = build("glow", image_shape=SHAPE, levels=2, steps=1, hidden=8).eval()
    with torch.no_grad():  # Glow zero-initialises its couplings: perturb, as training would
        for parameter in glow.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    detector = DensityOfStates(glow, codec=None).fit(data["fit"][:200])
    # the distribution term is replaced by its parts, one per level (they sum to it)
    assert detector.statistics_ == ["logdet", "log_pz.1", "log_pz.2"]
    values = detector.candidates(detector.statistics(data["test"][:10]))
    np.testing.assert_allclose(values["log_pz.1"] + values["log_pz.2"], values["log_pz"])
    terms_only = DensityOfStates(glow, codec=None, parts="terms").fit(data["fit"][:200])
    assert terms_only.statistics_ == ["log_pz", "logdet"]
    cv_glow = build("cv-glow", image_shape=SHAPE, levels=2, steps=1, hidden=8).eval()
    detector = DensityOfStates(cv_glow, codec=None, parts="terms").fit(data["fit"][:200])
    assert detector.statistics_ == ["log_pz"] and detector.dropped_ == ["logdet"]


def test_subsampling_and_argument_checks(model, data) -> None:
    detector = DensityOfStates(model, codec=None, max_fit=100).fit(data["fit"])
    assert detector.fit_statistics_.shape == (100, 1)
    with pytest.raises(ValueError, match="unknown codec"):
        DensityOfStates(model, codec="gif")
    with pytest.raises(ValueError, match="bandwidth"):
        DensityOfStates(model, bandwidth="wide")


def test_score_names_pick_codec_and_variant(model) -> None:
    from genood.ood import build

    detector = build("dos:none:terms", model)
    assert detector.codec is None and detector.parts == "terms"
    detector = build("dos", model, codec="png")
    assert detector.codec == "png" and detector.parts == "auto"
    with pytest.raises(ValueError, match="dos:CODEC:terms"):
        build("dos:png:levels", model)
