"""The small CNN p(y|x): learns a toy task, saves and loads exactly, checks its inputs."""

from __future__ import annotations

import numpy as np
import pytest

from genood.ood import Classifier


def _two_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A blob in the left third (label 0) or the right third (label 1) of a noisy image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    yy, xx = np.mgrid[0:8, 0:8]
    x0 = np.where(labels == 1, 5.5, 1.5) + rng.uniform(-0.5, 0.5, n)
    y0 = rng.uniform(2, 5, n)
    blob = np.exp(-((yy - y0[:, None, None]) ** 2 + (xx - x0[:, None, None]) ** 2) / 2)
    images = 20 + 200 * blob + rng.normal(0, 10, (n, 8, 8))
    return np.clip(images, 0, 255).round().astype(np.uint8)[:, None], labels


@pytest.fixture(scope="module")
def trained() -> Classifier:
    images, labels = _two_halves(800, seed=1)
    return Classifier((1, 8, 8), num_classes=2, width=8).fit(images, labels, epochs=3)


def test_learns_a_toy_task(trained) -> None:
    images, labels = _two_halves(400, seed=2)
    assert trained.accuracy(images, labels) > 0.9
    proba = trained.predict_proba(images)
    assert proba.shape == (400, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert trained.history["epochs"] == 3 and len(trained.history["train_loss"]) == 3
    assert trained.history["train_loss"][-1] < trained.history["train_loss"][0]


def test_save_load_gives_identical_predictions(trained, tmp_path) -> None:
    images, _ = _two_halves(100, seed=3)
    trained.save(tmp_path, data="toy")
    loaded = Classifier.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(images), trained.predict_proba(images))
    assert loaded.metadata["data"] == "toy"


def test_bad_inputs(trained, tmp_path) -> None:
    images, labels = _two_halves(10, seed=4)
    with pytest.raises(TypeError, match="uint8"):
        trained.predict(images / 255.0)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        Classifier((1, 8, 8), 2).fit(images, labels + 5, epochs=1)
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        Classifier((1, 8, 8), 2).fit(images, labels[:5], epochs=1)
    with pytest.raises(FileNotFoundError, match="genood train-classifier"):
        Classifier.load(tmp_path / "none")
