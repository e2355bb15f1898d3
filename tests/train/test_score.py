"""``score_dataset``: recorded preprocessing, per-sample terms, scoring settings, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import write_images

from genood.data.transforms import Preprocessing
from genood.train import format_summary, load_run, score_dataset, scores_path


def test_score_applies_the_recorded_preprocessing(padded_run: Path, tmp_path: Path) -> None:
    spec = write_images(tmp_path / "other.npz", 10, shape=(1, 6, 6), seed=5)
    scores = score_dataset(padded_run, spec, limit=7, batch_size=3, progress=False)
    assert set(scores) >= {"bits_per_dim", "log_prob", "log_pz", "logdet", "labels"}
    assert all(len(v) == 7 for v in scores.values())
    np.testing.assert_allclose(scores["log_pz"] + scores["logdet"], scores["log_prob"], rtol=1e-9)
    assert np.array_equal(scores["labels"], np.arange(7) % 10)

    saved = np.load(scores_path(padded_run, "npz", "other"))
    assert saved.files  # written as RUN/scores/npz-other.npz without pickles
    assert int(saved["num_dims"]) == 64 and str(saved["spec"]) == spec
    np.testing.assert_array_equal(saved["bits_per_dim"], scores["bits_per_dim"])

    # same numbers as the model applied by hand to padded images
    loaded = load_run(padded_run)
    images = torch.from_numpy(
        Preprocessing(pad_to=8).apply(np.load(tmp_path / "other.npz")["images"][:7])
    )
    with torch.no_grad():
        by_hand = loaded.model.bits_per_dim(images).double().numpy()
    np.testing.assert_allclose(scores["bits_per_dim"], by_hand, rtol=1e-5)


def test_scoring_another_shape_names_the_fix(padded_run: Path, tmp_path: Path) -> None:
    spec = write_images(tmp_path / "rgb.npz", 4, shape=(3, 6, 6))
    with pytest.raises(ValueError, match=r"rgb\.npz.*3x6x6.*1x8x8.*--channels 1"):
        score_dataset(padded_run, spec, save=False, progress=False)
    scores = score_dataset(
        padded_run,
        spec,
        save=False,
        progress=False,
        preprocessing=Preprocessing(pad_to=8, channels=1),
    )
    assert len(scores["bits_per_dim"]) == 4


def test_summary_table() -> None:
    scores = {
        "bits_per_dim": np.array([1.0, 2.0, 3.0]),
        "log_pz": np.array([-1.0, -2.0, -3.0]),
        "labels": np.array([0, 1, 2]),
    }
    table = format_summary(scores, "title")
    lines = table.splitlines()
    assert lines[0] == "title"
    assert lines[1].split() == ["mean", "std", "min", "5%", "25%", "50%", "75%", "95%", "max"]
    assert lines[2].split()[:3] == ["bits/dim", "2.0000", "0.8165"]
    assert lines[3].startswith("log_pz [nats]")
    assert "labels" not in table


def test_load_run_changes_scoring_settings(vae_run: Path, tmp_path: Path) -> None:
    loaded = load_run(vae_run, hparams={"iw_samples": 2, "iw_batch": 3})
    assert (loaded.model.iw_samples, loaded.model.iw_batch) == (2, 3)  # type: ignore[attr-defined]
    assert loaded.config.model.hparams["iw_samples"] == 2
    assert load_run(vae_run).model.iw_samples == 4  # type: ignore[attr-defined]  # run unchanged

    spec = write_images(tmp_path / "other.npz", 5, seed=3)
    score_dataset(loaded, spec, progress=False)
    with np.load(scores_path(vae_run, "npz", "other")) as saved:
        described = json.loads(str(saved["model"]))
    assert described["iw_samples"] == 2 and described["score_bound"] == "iwae"
