"""The statistics layer: each (model, image set) computed once, kept on disk, read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genood.ood.statistics import (
    Statistics,
    codec_length,
    concat,
    count,
    images_digest,
    model_pass,
    read_named,
    subset,
)

from .conftest import GaussianModel


def test_a_second_store_on_the_same_folder_runs_no_model(model, data, tmp_path) -> None:
    first = Statistics(tmp_path)
    needed = [model_pass(model), codec_length("png")]
    stats = first.gather(needed, data["test"], name="test")
    assert first.passes == 2
    assert {"model/bits_per_dim", "model/log_prob", "model/log_pz", "codec/png"} <= set(stats)
    second = Statistics(tmp_path)
    again = second.gather(needed, data["test"], name="test")
    assert second.passes == 0
    for key, values in stats.items():
        np.testing.assert_array_equal(again[key], values)
    assert count(again) == len(data["test"])


def test_duplicate_requirements_and_prefixes_share_one_pass(model, data) -> None:
    store = Statistics()
    stats = store.gather([model_pass(model), model_pass(model, "ensemble.0")], data["fit"])
    assert store.passes == 1
    np.testing.assert_array_equal(stats["model/log_prob"], stats["ensemble.0/log_prob"])


def test_other_weights_or_scoring_settings_are_other_keys(model, data) -> None:
    store = Statistics()
    other = GaussianModel().fit(data["val"])
    assert store.model_key(model) != store.model_key(other)
    assert store.model_key(model) == Statistics().model_key(model)
    assert Statistics(precision="bf16").model_key(model) != store.model_key(model)


def test_named_sets_are_read_back_without_their_images(model, data, tmp_path) -> None:
    store = Statistics(tmp_path)
    stats = store.model_pass(model, data["test"], name="fashion:test", prefix="main")
    stored = read_named(tmp_path, "main", "fashion:test")
    assert stored is not None
    np.testing.assert_array_equal(stored["bits_per_dim"], stats["bits_per_dim"])
    assert read_named(tmp_path, "main", "other") is None
    assert read_named(tmp_path / "nowhere", "main", "fashion:test") is None


def test_a_torn_file_is_computed_again(model, data, tmp_path) -> None:
    Statistics(tmp_path).gather([model_pass(model)], data["test"])
    for path in tmp_path.rglob("pass.npz"):
        path.write_bytes(b"not an npz")
    store = Statistics(tmp_path)
    stats = store.gather([model_pass(model)], data["test"])
    assert store.passes == 1 and len(stats["model/bits_per_dim"]) == len(data["test"])


def test_images_are_keyed_by_content() -> None:
    a = np.zeros((3, 1, 4, 4), np.uint8)
    assert images_digest(a) == images_digest(a.copy())
    assert images_digest(a) != images_digest(a + 1)
    assert images_digest(a) != images_digest(a.reshape(3, 1, 2, 8))


def test_subsets_and_concatenation() -> None:
    stats = {"model/x": np.arange(5.0), "codec/png": np.arange(5.0) * 2}
    part = subset(stats, np.array([0, 3]))
    assert part["codec/png"].tolist() == [0.0, 6.0]
    assert count(concat([part, part])) == 4
    with pytest.raises(ValueError, match="different lengths"):
        count({"a": np.zeros(2), "b": np.zeros(3)})
    with pytest.raises(ValueError, match="batch_size"):
        Statistics(batch_size=0)


def test_requirements_of_one_prefix_get_their_own_index_labels(data, tmp_path) -> None:
    from dataclasses import dataclass

    from genood.ood.statistics import Requirement

    @dataclass(frozen=True, eq=False)
    class Brightness(Requirement):
        @property
        def key(self) -> str:
            return "brightness"

        def compute(self, images: np.ndarray, settings: Statistics) -> dict:
            return {"mean": images.reshape(len(images), -1).mean(axis=1).astype(np.float64)}

    store = Statistics(tmp_path)
    store.gather([codec_length("png"), Brightness("codec")], data["test"][:5], name="few")
    index = json.loads((tmp_path / "index.json").read_text())
    assert {"codec.codec-png/few", "codec.brightness/few"} <= set(index)
