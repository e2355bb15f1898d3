"""The detector contract, run over the registry (``genood.ood.available()``), never a hand list.

Every registered score, and a combination, is built by its spec the way ``genood detect``
builds it, then: fitted on in-distribution images and on their statistics alike, calibrated
(its false-positive rate on fresh in-distribution images within sampling error of the target),
asked to predict, saved and loaded (identical scores), rebuilt from ``get_params()``, fed
synthetic statistics arrays, and given bad input, which it must refuse in one clear line.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genood.ood as ood
from genood.models import build as build_model
from genood.ood.registry import detector_class

from .conftest import SHAPE, GaussianModel

# A tiny model of each family a detector may ask for (``Detector.model_family``).
TINY_FAMILIES = {
    "hvae": {"latent_channels": [2, 2, 2], "hidden": 8, "num_mixtures": 2},
    "diffusion": {"hidden": 4, "levels": 0, "score_samples": 2},
    "vae": {"latent_dim": 2, "hidden": 4, "downsamples": 1, "num_mixtures": 1, "iw_samples": 4},
}
# Scores that optimise per image run here with their options turned down (the same code path,
# a few steps and samples instead of 100 and 100), to keep the suite fast.
CHEAP = {"regret": "regret:2:2"}
AVAILABLE = [CHEAP.get(name, name) for name in ood.available()]
SPECS = [
    *AVAILABLE,
    "likelihood+typicality",
    "complexity+typicality@fisher",
    "dos+energy",
    ood.RECOMMENDED_GATE,
    ood.RECOMMENDED_LOGITS_GATE,
]
TARGET = 0.1


@pytest.fixture(scope="module")
def family_models(data) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: build_model(name, SHAPE, **hp).eval() for name, hp in TINY_FAMILIES.items()}


def _built(spec: str, models: dict, family_models: dict) -> ood.Detector:
    family = detector_class(spec.split("+")[0].split(":")[0]).model_family
    model = family_models[family] if family else models["model"]
    return ood.build(
        spec,
        model,
        background=models["background"],
        ensemble=models["members"],
        codec="png",
        classifier=models["classifier"],
    )


def _load_models(detector: ood.Detector, models: dict) -> dict:
    return {**{n: m for n, m in detector.models().items()}, "ensemble": models["members"]}


@pytest.fixture
def models(model, background, members, classifier) -> dict:
    return {"model": model, "background": background, "members": members, "classifier": classifier}


def test_the_registry_lists_every_score() -> None:
    assert {"likelihood", "typicality", "ratio", "complexity", "waic", "dos", "llr"} <= set(
        ood.available()
    )
    for name in ood.available():
        cls = detector_class(name)
        assert cls.summary and cls.name == name and cls.needs, name


@pytest.mark.parametrize("spec", SPECS)
def test_fit_calibrate_predict_meet_the_target(spec, models, family_models, data) -> None:
    detector = _built(spec, models, family_models)
    detector.fit(data["fit"]).calibrate(data["val"], TARGET)
    scores = detector.decision_function(data["test"])
    assert scores.shape == (len(data["test"]),) and scores.dtype == np.float64
    fpr = float(np.mean(detector.predict(data["test"])))
    assert fpr <= TARGET + 3 * math.sqrt(TARGET * (1 - TARGET) / len(scores)), (spec, fpr)
    assert detector.predict(data["noise"][:20]).dtype == bool


@pytest.mark.parametrize("spec", SPECS)
def test_images_and_their_statistics_give_the_same_detector(spec, models, family_models, data):
    from_images = _built(spec, models, family_models).fit(data["fit"])
    from_stats = _built(spec, models, family_models)
    from_stats.fit(from_stats.statistics(data["fit"]))
    test_stats = from_stats.statistics(data["test"][:50])
    np.testing.assert_array_equal(
        from_images.decision_function(data["test"][:50]), from_stats.decision_function(test_stats)
    )


@pytest.mark.parametrize("spec", SPECS)
def test_synthetic_statistics_need_no_model_pass(spec, models, family_models, data) -> None:
    # Arrays shaped like the real statistics, drawn at random: a detector computes on arrays.
    detector = _built(spec, models, family_models)
    real = detector.statistics(data["fit"][:300])
    rng = np.random.default_rng(0)
    synthetic = {k: v.mean() + (v.std() + 1e-3) * rng.standard_normal(300) for k, v in real.items()}
    passes = detector.store.passes
    detector.fit(synthetic)
    scores = detector.decision_function({k: v[:40] for k, v in synthetic.items()})
    assert scores.shape == (40,) and np.isfinite(scores).all()
    assert detector.store.passes == passes
    with pytest.raises(ValueError, match="needs the statistic"):
        detector.decision_function({"nothing/useful": np.zeros(3)})


@pytest.mark.parametrize("spec", SPECS)
def test_save_load_round_trip(spec, models, family_models, data, tmp_path) -> None:
    detector = _built(spec, models, family_models).fit(data["fit"]).calibrate(data["val"], TARGET)
    detector.save(tmp_path / "d")
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = ood.load(tmp_path / "d", **_load_models(detector, models))
    assert type(loaded) is type(detector) and loaded.threshold_ == detector.threshold_
    batch = np.concatenate([data["test"][:100], data["noise"][:20]])
    np.testing.assert_array_equal(
        loaded.decision_function(batch), detector.decision_function(batch)
    )
    np.testing.assert_array_equal(loaded.predict(batch), detector.predict(batch))


@pytest.mark.parametrize("spec", AVAILABLE)
def test_get_params_rebuilds_the_detector(spec, models, family_models, data) -> None:
    detector = _built(spec, models, family_models)
    params = detector.get_params()
    assert set(params) == set(type(detector).param_names())
    twin = type(detector)(**params)
    np.testing.assert_array_equal(
        twin.fit(data["fit"]).decision_function(data["test"][:30]),
        detector.fit(data["fit"]).decision_function(data["test"][:30]),
    )


@pytest.mark.parametrize("spec", AVAILABLE)
def test_bad_input_is_refused_in_one_line(spec, models, family_models, data, tmp_path) -> None:
    with pytest.raises(ValueError, match=spec) as bad_spec:
        ood.parse(f"{spec}:no:such:option")
    assert "\n" not in str(bad_spec.value)
    detector = _built(spec, models, family_models)
    with pytest.raises(ood.NotFittedError):
        detector.decision_function(data["test"][:5])
    with pytest.raises(TypeError, match="uint8"):
        detector.fit(data["fit"].astype(np.float32))
    detector.fit(data["fit"]).calibrate(data["val"], TARGET).save(tmp_path / "d")
    others = {n: GaussianModel().fit(data["val"], seed=9) for n in detector.models()}
    if "model" in detector.models() and detector.model_family:
        torch.manual_seed(5)
        family = detector.model_family
        others["model"] = build_model(family, SHAPE, **TINY_FAMILIES[family])
    with pytest.raises((ValueError, TypeError)) as wrong_model:
        ood.load(tmp_path / "d", **{**_load_models(detector, models), **others})
    assert "\n" not in str(wrong_model.value)


@pytest.mark.parametrize(
    "spec", [s for s in ood.available() if set(detector_class(s).needs) - {"model"}]
)
def test_a_missing_model_is_named_with_its_fix(spec, models) -> None:
    with pytest.raises(ValueError, match="genood train"):
        ood.build(spec, models["model"])


def test_a_score_that_the_model_cannot_give_is_refused(models) -> None:
    with pytest.raises(TypeError, match="hierarchical VAE"):
        ood.build("llr", models["model"])
    with pytest.raises(ValueError, match="gives none"):
        ood.build("dos:none:parts", models["model"]).fit(np.zeros((50, *SHAPE), np.uint8) + 1)
