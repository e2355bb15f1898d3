"""Nalisnick et al.'s typicality test, single inputs and batches of M."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genood.ood import Likelihood, Typicality

from .conftest import check_detector


def test_typical_value_is_the_mean_held_out_bits_per_dim(model, data) -> None:
    detector = Typicality(model).fit(data["fit"])
    bits = model.bits_per_dim(torch.from_numpy(data["fit"])).detach().double().numpy()
    assert detector.typical_ == pytest.approx(bits.mean())
    np.testing.assert_allclose(
        detector.decision_function(data["fit"][:20]), np.abs(bits[:20] - bits.mean()), atol=1e-5
    )


def test_single_sample_detection(model, data) -> None:
    check_detector(Typicality(model), data, ood=("noise", "constant"))


def test_two_sided_rejects_too_likely_inputs(model) -> None:
    """The model's own mode is far more likely than its samples, yet atypical: rejected.

    In-distribution here is the model's own samples, whose bits/dim concentrate around the
    entropy rate; the raw likelihood accepts the mode, the typicality test does not.
    """
    torch.manual_seed(0)
    samples = model.sample_images(1500).numpy()
    mode = model.postprocess(model.mean.detach()[None].expand(20, -1, -1, -1)).numpy()
    typicality = Typicality(model).fit(samples[:500]).calibrate(samples[500:], 0.05)
    likelihood = Likelihood(model).fit(samples[:500]).calibrate(samples[500:], 0.05)
    assert likelihood.decision_function(mode).max() < typicality.typical_
    assert not likelihood.predict(mode).any()
    assert typicality.predict(mode).all()


@pytest.mark.parametrize("m", [1, 5, 25])
def test_batch_test_meets_its_fpr(model, data, m: int) -> None:
    detector = Typicality(model, n_bootstrap=4000).fit(data["fit"])
    detector.calibrate_batches(data["val"], m, target_fpr=0.1)
    batches = detector.predict_batches(data["test"], m)
    assert len(batches) == len(data["test"]) // m
    # three binomial standard errors, plus the bootstrap threshold's own error at small M
    assert batches.mean() <= 0.1 + 3 * math.sqrt(0.09 / len(batches)) + 0.02


def test_batches_catch_a_shift_single_inputs_miss(model, data) -> None:
    """Brightening by 20 grey levels: rarely seen one image at a time, plain in batches of 25."""
    shifted = np.clip(data["test"].astype(int) + 20, 0, 255).astype(np.uint8)
    detector = Typicality(model, n_bootstrap=4000).fit(data["fit"])
    rates = {}
    for m in (1, 25):
        detector.calibrate_batches(data["val"], m, target_fpr=0.1)
        rates[m] = detector.predict_batches(shifted, m).mean()
    assert rates[1] < 0.5 < 0.9 < rates[25]
    # the threshold shrinks as the batch mean concentrates
    assert detector.batch_thresholds_[25] < detector.batch_thresholds_[1]


def test_batch_errors(model, data) -> None:
    detector = Typicality(model).fit(data["fit"])
    with pytest.raises(ValueError, match="multiple of M"):
        detector.score_batches(data["test"][:7], 5)
    with pytest.raises(ValueError, match=r"calibrate_batches\(val_images, 5\)"):
        detector.predict_batches(data["test"][:10], 5)
    with pytest.raises(ValueError, match="positive"):
        detector.calibrate_batches(data["val"], 0)


def test_batch_thresholds_survive_save_and_load(model, data, tmp_path) -> None:
    detector = Typicality(model).fit(data["fit"]).calibrate(data["val"])
    detector.calibrate_batches(data["val"], 10).save(tmp_path)
    loaded = Typicality.load(tmp_path, model=model)
    assert loaded.batch_thresholds_ == detector.batch_thresholds_
    assert loaded.typical_ == detector.typical_
