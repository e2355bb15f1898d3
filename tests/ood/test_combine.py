"""A union of scores: robust z-scores, the max over components, save/load, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from genood.ood import (
    Combined,
    DensityOfStates,
    Detector,
    GuardedClassifier,
    InputComplexity,
    Likelihood,
    LikelihoodRatio,
    Typicality,
)

from .conftest import GaussianModel, check_detector


def _combined(model) -> Combined:
    return Combined([InputComplexity(model, "png"), Typicality(model)])


def test_score_is_the_max_robust_z_score(model, data) -> None:
    detector = _combined(model).fit(data["fit"])
    raw = [
        InputComplexity(model, "png").fit(data["fit"]).decision_function(data["fit"]),
        Typicality(model).fit(data["fit"]).decision_function(data["fit"]),
    ]
    for k, scores in enumerate(raw):
        median = np.median(scores)
        assert detector.medians_[k] == pytest.approx(median)
        assert detector.scales_[k] == pytest.approx(1.4826 * np.median(np.abs(scores - median)))
    z = detector.z_scores(data["test"][:40])
    assert z.shape == (2, 40)
    np.testing.assert_allclose(detector.decision_function(data["test"][:40]), z.max(axis=0))
    assert detector.label == "complexity+typicality"


def test_a_memorising_component_is_standardised_on_other_images(model, data) -> None:
    detector = Combined([Typicality(model), DensityOfStates(model, codec=None)])
    assert detector.memorises_fit_images and not _combined(model).memorises_fit_images
    detector.fit(data["fit"])
    assert detector.detectors[1].n_fit_ == 250
    second_half = DensityOfStates(model, codec=None).fit(data["fit"][:250])
    scores = second_half.decision_function(data["fit"][250:])
    assert detector.medians_[1] == pytest.approx(np.median(scores))


def test_detects_and_meets_its_fpr(model, data) -> None:
    check_detector(_combined(model), data, ood=("noise", "constant"))


def test_union_catches_what_each_component_catches(model, data) -> None:
    """The mode (too likely, caught by typicality only) and noise both score high."""
    combined = _combined(model).fit(data["fit"]).calibrate(data["val"], 0.05)
    mode = model.postprocess(model.mean.detach()[None].expand(5, -1, -1, -1)).numpy()
    detection = combined.detect(np.concatenate([mode, data["noise"][:5]]))
    assert detection.components is not None and set(detection.components) == {
        "complexity",
        "typicality",
    }
    z = np.stack(list(detection.components.values()))
    assert np.allclose(detection.scores, z.max(axis=0))


def test_save_load_and_rejection_reasons(model, background, data, tmp_path) -> None:
    detector = Combined([Typicality(model), LikelihoodRatio(model, background)])
    detector.fit(data["fit"]).calibrate(data["val"], 0.1).save(tmp_path)
    assert (tmp_path / "component-1" / "detector.json").is_file()
    loaded = Detector.load(tmp_path, model=model, background=background)
    batch = np.concatenate([data["test"][:100], data["noise"][:20]])
    np.testing.assert_array_equal(
        loaded.decision_function(batch), detector.decision_function(batch)
    )
    np.testing.assert_array_equal(loaded.predict(batch), detector.predict(batch))
    with pytest.raises(TypeError, match="background"):
        Detector.load(tmp_path, model=model)

    class Sevens:
        def predict(self, images: np.ndarray) -> np.ndarray:
            return np.full(len(images), 7)

    decision = GuardedClassifier(Sevens(), loaded).predict(data["noise"][:3])
    reason = decision.reasons[0]
    assert reason.score == "typicality+ratio"
    assert reason.component in ("typicality", "ratio")
    assert "driven by" in str(reason)


def test_components_must_agree(model, data) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        Combined([Likelihood(model)])
    with pytest.raises(ValueError, match="different shapes"):
        Combined([Likelihood(model), Likelihood(GaussianModel((1, 4, 4)))])
    with pytest.raises(ValueError, match="two different 'model'"):
        Combined([Likelihood(model), Typicality(GaussianModel())])


def test_fisher_and_simes_combine_conformal_p_values(model, data) -> None:
    from genood.ood import build

    fisher = build("complexity+typicality@fisher", model).fit(data["fit"])
    simes = build("complexity+typicality@simes", model).fit(data["fit"])
    assert fisher.label == "complexity+typicality@fisher"
    batch = data["test"][:40]
    p = fisher.p_values_of_components(batch)
    reference = fisher.references_
    for k in range(2):  # p = (1 + #{reference >= score}) / (n + 1), per component
        component = fisher.component_scores(batch)[k]
        expected = (1 + (reference[k][None, :] >= component[:, None]).sum(1)) / (
            reference.shape[1] + 1
        )
        np.testing.assert_allclose(p[k], expected)
    np.testing.assert_allclose(fisher.decision_function(batch), -2 * np.log(p).sum(axis=0))
    ps = simes.p_values_of_components(batch)
    ordered = np.sort(ps, axis=0)
    expected = -np.log(np.minimum(2 * ordered[0], ordered[1]))
    np.testing.assert_allclose(simes.decision_function(batch), expected)
    check_detector(build("complexity+typicality@simes", model), data, ("noise", "constant"))


def test_a_combination_method_needs_a_combination(model) -> None:
    from genood.ood import parse

    for bad in ("likelihood@fisher", "likelihood+typicality@mean"):
        with pytest.raises(ValueError, match="A\\+B@METHOD"):
            parse(bad)


# ------------------------------------------------------------- components over two image shapes
PADDED = (1, 12, 12)  # the model's input: the 8x8 images as loaded, zero-padded (a Glow run's 32)


@pytest.fixture(scope="module")
def padded_glow():
    """A tiny Glow over the padded images (untrained: the arithmetic, not the AUROC, is tested)."""
    import torch

    from genood.models import build as build_model

    torch.manual_seed(0)
    return build_model("glow", PADDED, levels=2, steps=1, hidden=8).eval()


def _pad():
    from genood.data.transforms import Preprocessing

    return Preprocessing(pad_to=PADDED[-1])


def test_a_cross_shape_combination_is_the_components_z_scores_combined(
    padded_glow, classifier, data
) -> None:
    """dos reads the padded images, energy the 8x8 ones; the combination takes the 8x8 images
    and scores exactly what the two components, fitted and standardised separately, give."""
    from genood.ood import DensityOfStates, Energy, build

    loaded = {k: data[k][:300] for k in ("fit", "val", "test")}
    padded = {k: _pad().apply(v) for k, v in loaded.items()}
    for method in ("max-z", "fisher", "simes"):
        spec = "dos+energy" + ("" if method == "max-z" else f"@{method}")
        combined = build(spec, padded_glow, classifier=classifier, preprocessing=_pad())
        assert combined.image_shape == (1, 8, 8) and combined.two_views
        combined.fit(loaded["fit"]).calibrate(loaded["val"], 0.1)
        # by hand: dos on padded images, energy on loaded ones; fitted on the first half of
        # the fitting images, standardised on the second (dos memorises its fitting images)
        dos = DensityOfStates(padded_glow).fit(padded["fit"][:150])
        energy = Energy(classifier).fit(loaded["fit"][:150])
        reference = np.stack(
            [
                dos.decision_function(padded["fit"][150:]),
                energy.decision_function(loaded["fit"][150:]),
            ]
        )
        test = np.stack(
            [dos.decision_function(padded["test"]), energy.decision_function(loaded["test"])]
        )
        if method == "max-z":
            median = np.median(reference, axis=1, keepdims=True)
            scale = 1.4826 * np.median(np.abs(reference - median), axis=1, keepdims=True)
            expected = ((test - median) / scale).max(axis=0)
        else:
            above = (reference[:, None, :] >= test[:, :, None]).sum(axis=2)
            p = (1 + above) / (reference.shape[1] + 1)
            if method == "fisher":
                expected = -2 * np.log(p).sum(axis=0)
            else:
                ordered = np.sort(p, axis=0)
                expected = -np.log(np.minimum(2 * ordered[0], ordered[1]))
        np.testing.assert_allclose(combined.decision_function(loaded["test"]), expected)
        # the workflow's route (each set's two views gathered once) gives the same statistics
        from genood.ood import Statistics, workflow

        views = workflow.gather_sets(
            {spec: combined}, {"t": padded["test"]}, Statistics(), {"t": loaded["test"]}
        )
        np.testing.assert_allclose(
            combined.decision_function(views["t"]), combined.decision_function(loaded["test"])
        )


def test_a_cross_shape_combination_saves_guards_and_names_its_fix(
    padded_glow, classifier, data, tmp_path
) -> None:
    from genood.ood import build, load

    with pytest.raises(ValueError, match="pad_to=12"):
        build("dos+energy", padded_glow, classifier=classifier)
    with pytest.raises(TypeError, match="Preprocessing"):
        Combined(
            [DensityOfStates(padded_glow), build("energy", classifier=classifier)],
            preprocessing=lambda x: x,  # type: ignore[arg-type]
        )
    combined = build("dos+energy", padded_glow, classifier=classifier, preprocessing=_pad())
    combined.fit(data["fit"][:300]).calibrate(data["val"][:300], 0.1).save(tmp_path / "d")
    again = load(tmp_path / "d", model=padded_glow, classifier=classifier)
    assert (
        again.preprocessing == _pad() and again.get_params().keys() == combined.get_params().keys()
    )
    batch = np.concatenate([data["test"][:50], data["noise"][:20]])
    np.testing.assert_array_equal(again.decision_function(batch), combined.decision_function(batch))
    # the gate: the classifier and the combination take the same 8x8 images
    guard = GuardedClassifier(classifier, combined)
    decision = guard.predict(batch)
    assert decision.rejected[50:].mean() > 0.9
    assert {r.component for r in decision.reasons if r is not None} <= {"dos", "energy"}
    with pytest.raises(ValueError, match="leave detector_preprocessing out"):
        GuardedClassifier(classifier, combined, _pad().apply)
