"""The shared detector contract: input checks, fit/calibrate order, conformal threshold, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genood.ood import (
    Detector,
    Likelihood,
    NotFittedError,
    Statistics,
    Typicality,
    conformal_threshold,
    validate_images,
)

from .conftest import SHAPE, GaussianModel


# ----------------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (np.zeros((4, *SHAPE), np.float32), TypeError, r"uint8 .*float32 \(values \[0, 0\]\)"),
        (np.full((4, *SHAPE), np.nan), TypeError, "NaN"),
        (np.full((4, *SHAPE), 300, np.int64), TypeError, r"int64 \(values \[300, 300\]\)"),
        (np.zeros((4, 1, 8, 9), np.uint8), ValueError, r"\(N, 1, 8, 8\), got \(4, 1, 8, 9\)"),
        (np.zeros(SHAPE, np.uint8), ValueError, "single image"),
        (np.zeros((4, 8, 8), np.uint8), ValueError, "channel axis"),
        (np.zeros((0, *SHAPE), np.uint8), ValueError, "empty"),
        ([[1, 2]], TypeError, "numpy array"),
    ],
)
def test_bad_images_get_clear_errors(images, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        validate_images(images, SHAPE, "Detector")


def test_channels_last_is_named() -> None:
    with pytest.raises(ValueError, match="channels last"):
        validate_images(np.zeros((2, 8, 8, 3), np.uint8), (3, 8, 8), "Detector")


def test_torch_uint8_is_accepted_and_nothing_is_rescaled() -> None:
    images = torch.randint(0, 256, (3, *SHAPE), dtype=torch.uint8)
    checked = validate_images(images, SHAPE, "Detector")
    assert checked.dtype == np.uint8 and np.array_equal(checked, images.numpy())


def test_order_of_use_is_enforced(model, data) -> None:
    detector = Typicality(model)
    with pytest.raises(NotFittedError, match=r"fit\(train_images\)"):
        detector.decision_function(data["test"])
    with pytest.raises(NotFittedError, match="fit"):
        detector.calibrate(data["val"])
    detector.fit(data["fit"])
    with pytest.raises(NotFittedError, match=r"calibrate\(val_images"):
        detector.predict(data["test"])
    with pytest.raises(NotFittedError, match="calibrate"):
        detector.p_values(np.zeros(3))


def test_detectors_check_inputs(model, data) -> None:
    detector = Likelihood(model).fit(data["fit"])
    with pytest.raises(TypeError, match="uint8"):
        detector.decision_function(data["test"].astype(np.float32) / 255)
    with pytest.raises(ValueError, match="empty"):
        detector.fit(data["test"][:0])


# ----------------------------------------------------------------------------- calibration
def test_conformal_threshold_rule() -> None:
    scores = np.arange(1.0, 100.0)  # n = 99: k = ceil(100 * 0.9) = 90
    assert conformal_threshold(scores, 0.1) == 90.0
    assert np.mean(scores > 90.0) <= 0.1
    with pytest.raises(ValueError, match="at least 19"):
        conformal_threshold(np.arange(10.0), 0.05)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        conformal_threshold(scores, 1.5)


def test_p_values_are_conformal(model, data) -> None:
    detector = Likelihood(model).fit(data["fit"]).calibrate(data["val"], 0.1)
    p_in = detector.p_values(detector.decision_function(data["test"]))
    assert p_in.min() > 0 and p_in.max() <= 1
    # in-distribution p-values are ~uniform: P(p <= a) <= a up to sampling error
    assert np.mean(p_in <= 0.1) < 0.1 + 3 * np.sqrt(0.09 / len(p_in))
    # rejecting at the threshold is the same as p <= alpha up to ties
    scores = detector.decision_function(data["noise"])
    assert np.all(detector.p_values(scores) <= 0.1)


class _Overflowing(GaussianModel):
    """A model whose log-density is NaN on constant images (as a flow can overflow)."""

    def log_prob_terms(self, x):
        terms = super().log_prob_terms(x)
        flat = x.flatten(1)
        bad = (flat == flat[:, :1]).all(dim=1)
        return {"log_pz": torch.where(bad, torch.nan, terms["log_pz"])}


def test_non_finite_scores_are_most_anomalous_and_rejected(model, data) -> None:
    broken = _Overflowing()
    broken.load_state_dict(model.state_dict())
    detector = Likelihood(broken).fit(data["fit"]).calibrate(data["val"], 0.1)
    with pytest.warns(RuntimeWarning, match="not finite"):
        scores = detector.decision_function(data["constant"][:5])
    assert np.all(scores == np.inf)
    assert detector.reject(np.array([np.nan, -np.inf])).tolist() == [True, False]


def test_a_shared_store_runs_the_model_once_per_set(model, data, monkeypatch) -> None:
    store = Statistics(batch_size=10_000)
    calls = []
    original = model.log_prob_terms
    monkeypatch.setattr(model, "log_prob_terms", lambda x: calls.append(1) or original(x))
    a = Likelihood(model, store=store).fit(data["fit"])
    b = Typicality(model, store=store).fit(data["fit"])
    assert len(calls) == 1 and store.passes == 1
    assert np.allclose(
        b.decision_function(data["test"]), np.abs(a.decision_function(data["test"]) - b.typical_)
    )
    assert len(calls) == 2


def test_score_samples_is_a_deprecated_alias(model, data) -> None:
    detector = Likelihood(model).fit(data["fit"])
    with pytest.warns(DeprecationWarning, match="decision_function"):
        old = detector.score_samples(data["test"][:10])
    np.testing.assert_array_equal(old, detector.decision_function(data["test"][:10]))


# ----------------------------------------------------------------------------- persistence
def test_load_refuses_another_model(model, data, tmp_path) -> None:
    Typicality(model).fit(data["fit"]).calibrate(data["val"]).save(tmp_path)
    other = GaussianModel().fit(data["val"])
    with pytest.raises(ValueError, match="not the model the detector was fitted with"):
        Detector.load(tmp_path, model=other)
    with pytest.raises(TypeError, match=r"\['model'\]"):
        Detector.load(tmp_path)
    with pytest.raises(TypeError, match="holds a 'typicality' detector"):
        Likelihood.load(tmp_path, model=model)
    with pytest.raises(FileNotFoundError, match="not a saved genood detector"):
        Detector.load(tmp_path / "nowhere", model=model)
