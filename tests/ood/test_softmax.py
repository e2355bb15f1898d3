"""msp and energy: the classifier's own scores, checked against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genood.ood as ood
from genood.ood import workflow
from genood.ood.softmax import ClassifierLogits, Energy, MaxSoftmax, classifier_logits

from .conftest import SHAPE, left_heavy


class FixedLogits:
    """A stand-in classifier whose logits are a fixed function of the image: the mean pixel of
    each half, scaled, so the hand computation below is exact."""

    image_shape = SHAPE
    num_classes = 2

    def logits(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        x = images.astype(np.float64) / 255.0
        half = images.shape[-1] // 2
        return np.stack([8 * x[..., :half].mean((1, 2, 3)), 8 * x[..., half:].mean((1, 2, 3))], 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"scale": torch.tensor([8.0])}

    def describe(self) -> dict[str, object]:
        return {"model": "FixedLogits"}


def _hand(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """msp and energy (T = 1) by the textbook formulas, one image at a time."""
    msp, energy = [], []
    for row in logits:
        exps = [math.exp(v) for v in row]
        msp.append(-max(exps) / sum(exps))
        energy.append(-math.log(sum(exps)))
    return np.array(msp), np.array(energy)


def test_scores_match_the_hand_computation(data) -> None:
    fixed = FixedLogits()
    images = data["test"][:40]
    want_msp, want_energy = _hand(fixed.logits(images))
    np.testing.assert_allclose(MaxSoftmax(fixed).fit(images).decision_function(images), want_msp)
    np.testing.assert_allclose(Energy(fixed).fit(images).decision_function(images), want_energy)
    # T scales the logits inside and the energy outside
    t = 2.5
    want = -t * np.log(np.exp(fixed.logits(images) / t).sum(axis=1))
    got = Energy(fixed, temperature=t).fit(images).decision_function(images)
    np.testing.assert_allclose(got, want)


def test_sign_confident_is_in_distribution() -> None:
    # logits (10, 0): confident; (0, 0): undecided. Higher score = more anomalous for both.
    stats = {"classifier/logit.0": np.array([10.0, 0.0]), "classifier/logit.1": np.zeros(2)}
    msp = MaxSoftmax(FixedLogits()).fit(stats).decision_function(stats)
    energy = Energy(FixedLogits()).fit(stats).decision_function(stats)
    assert msp[0] < msp[1] and energy[0] < energy[1]
    assert msp[1] == pytest.approx(-0.5) and energy[1] == pytest.approx(-math.log(2))
    assert msp.min() >= -1.0


def test_a_trained_classifier_gives_its_logits(classifier, data) -> None:
    assert classifier.accuracy(data["test"], left_heavy(data["test"])) > 0.8
    for cls in (MaxSoftmax, Energy):
        detector = cls(classifier).fit(data["fit"]).calibrate(data["val"], 0.1)
        scores = detector.decision_function(data["test"])
        assert scores.shape == (len(data["test"]),)
        np.testing.assert_allclose(
            detector.statistics(data["test"])["classifier/logit.1"],
            classifier.logits(data["test"])[:, 1],
        )


def test_the_requirement_reads_loaded_images_and_is_keyed_by_the_weights(classifier) -> None:
    requirement = classifier_logits(classifier)
    assert isinstance(requirement, ClassifierLogits) and requirement.on_loaded_images
    assert requirement.key == classifier_logits(classifier).key
    other = FixedLogits()
    assert classifier_logits(other).key != requirement.key


def test_gather_sets_gives_the_classifier_the_loaded_images(data) -> None:
    # The models see a transformed copy (as a run's preprocessing would give), the classifier
    # the images as loaded.
    fixed = FixedLogits()
    detectors = {"msp": MaxSoftmax(fixed)}
    loaded = {"a": data["test"][:30]}
    shown = {"a": data["test"][:30, :, :, ::-1].copy()}
    stats = workflow.gather_sets(detectors, shown, ood.Statistics(), loaded)
    np.testing.assert_allclose(stats["a"]["classifier/logit.0"], fixed.logits(loaded["a"])[:, 0])
    with pytest.raises(ValueError, match="same images"):
        workflow.gather_sets(detectors, shown, ood.Statistics(), {"a": data["test"][:10]})


def test_save_load_round_trip(classifier, data, tmp_path) -> None:
    for spec in ("msp", "energy:2"):
        detector = ood.build(spec, classifier=classifier)
        detector.fit(data["fit"]).calibrate(data["val"], 0.1).save(tmp_path / spec)
        loaded = ood.load(tmp_path / spec, classifier=classifier)
        assert loaded.get_params(deep=False).keys() == detector.get_params().keys()
        batch = np.concatenate([data["test"][:50], data["noise"][:20]])
        np.testing.assert_array_equal(
            loaded.decision_function(batch), detector.decision_function(batch)
        )
        assert loaded.threshold_ == detector.threshold_


def test_what_is_refused_names_the_fix(model) -> None:
    with pytest.raises(ValueError, match="genood train-classifier"):
        ood.build("msp", model)
    with pytest.raises(TypeError, match="classifier with logits"):
        MaxSoftmax(model)
    with pytest.raises(ValueError, match="T > 0"):
        ood.parse("energy:-1")
    with pytest.raises(ValueError, match="T > 0"):
        ood.parse("energy:hot")
