"""``genood detect`` and ``genood train-classifier`` end to end on tiny runs and npz data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genood import config as cfg
from genood.cli import main
from genood.ood import RECOMMENDED

from .conftest import HAS_IMAGECODECS, make_blobs, make_noise

pytestmark = pytest.mark.slow  # trains three tiny runs (about 10 s on a quiet CPU)
STRONG = "jpegxl" if HAS_IMAGECODECS else "png"  # the codec named in complexity:CODEC


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """npz data sets, a tiny trained Glow run with a background model and one extra member."""
    from genood.train import fit, fit_background

    root = tmp_path_factory.mktemp("detect")
    sets = {
        "train": make_blobs(600, seed=1),
        "test": make_blobs(200, seed=2),
        "noise": make_noise(100, seed=3),
    }
    for name, images in sets.items():
        labels = (images[:, 0].max(axis=1).argmax(axis=1) >= 4).astype(np.int64)
        np.savez(root / f"{name}.npz", images=images, labels=labels)
    config = cfg.from_dict(
        {
            "model": {"name": "glow", "hparams": {"levels": 2, "steps": 1, "hidden": 8}},
            "data": {"train": f"npz:{root / 'train.npz'}", "val": ""},
            "train": {
                "steps": 30,
                "batch_size": 32,
                "warmup_steps": 5,
                "device": "cpu",
                "eval_every": 0,
                "checkpoint_every": 10,
                "threads": 1,
            },
        }
    )
    run = root / "run"
    fit(config, run, progress=False)
    fit_background(run, mutation_rate=0.2, steps=5, progress=False)
    member = config
    member.train.seed = 1
    fit(member, run / "ensemble" / "seed-1", progress=False)
    return {"root": root, "run": run}


def _detect(workspace, *extra: str) -> int:
    root = workspace["root"]
    return main(
        [
            "detect",
            "--run", str(workspace["run"]),
            "--in", f"npz:{root / 'test.npz'}",
            "--out", f"npz:{root / 'noise.npz'}",
            "--target-fpr", "0.1",
            "--no-progress",
            *extra,
        ]
    )  # fmt: skip


def test_detect_warns_of_a_shorter_trained_background(workspace, capsys) -> None:
    assert _detect(workspace, "--score", "ratio", "--bootstrap", "0") == 0
    printed = capsys.readouterr().out
    assert "warning: the background model trained for 5 steps, the model for 30" in printed


def test_detect_writes_metrics_scores_and_detectors(workspace, capsys) -> None:
    save = workspace["root"] / "result"
    scores = (
        f"likelihood,typicality,ratio,complexity,complexity:{STRONG},waic,dos,complexity+typicality"
    )
    assert _detect(workspace, "--score", scores, "--save", str(save), "--bootstrap", "10") == 0
    printed = capsys.readouterr().out
    assert "OOD is the positive class" in printed and f"complexity:{STRONG}" in printed
    document = json.loads((save / "detection.json").read_text())
    assert document["positive_class"] == "ood"
    assert document["images"] == {
        "fit": 30, "calibration": 30, "in": 140, "out": 100,
        "held_out_from": document["images"]["held_out_from"],
    }  # fmt: skip
    assert set(document["scores"]) == set(scores.split(","))
    assert document["background"] == str(workspace["run"] / "background")  # ratio's second model
    for values in document["scores"].values():
        for key in ("auroc", "aupr_in", "aupr_out", "fpr95", "threshold", "auroc_ci"):
            assert key in values
    with np.load(save / "scores.npz") as arrays:
        assert arrays["ratio_in"].shape == (140,) and arrays["waic_out"].shape == (100,)
        assert arrays[f"complexity-{STRONG}_in"].shape == (140,)
        assert arrays["complexity+typicality_out"].shape == (100,)
        # the evaluated images never overlap the held-out ones
        assert len(np.unique(arrays["in_index"])) == 140
    from genood.ood import Detector
    from genood.train import load_run

    model = load_run(workspace["run"]).model
    typicality = Detector.load(save / "detectors" / "typicality", model=model)
    assert typicality.threshold_ == document["scores"]["typicality"]["threshold"]


def test_any_run_of_the_architecture_can_be_the_ratios_second_model(workspace) -> None:
    """Schirrmeister et al.'s general-domain model is another run of the same architecture (here
    the ensemble member stands in for it); detection.json names the one that was used."""
    other = workspace["run"] / "ensemble" / "seed-1"
    save = workspace["root"] / "general"
    assert (
        _detect(workspace, "--score", "ratio", "--background", str(other), "--save", str(save)) == 0
    )
    assert json.loads((save / "detection.json").read_text())["background"] == str(other)
    plain = workspace["root"] / "plain"
    assert _detect(workspace, "--score", "likelihood", "--save", str(plain), "--limit", "50") == 0
    assert "background" not in json.loads((plain / "detection.json").read_text())


def test_default_save_folder_is_under_the_run(workspace) -> None:
    assert _detect(workspace, "--score", "likelihood", "--limit", "50") == 0
    folders = list((workspace["run"] / "detect").glob("*-vs-*"))
    assert folders and (folders[0] / "detection.json").is_file()


def test_missing_models_name_the_command_that_trains_them(workspace, tmp_path, capsys) -> None:
    assert _detect(workspace, "--score", "ratio", "--background", str(tmp_path / "no")) == 1
    assert "genood train-background --run" in capsys.readouterr().err
    assert _detect(workspace, "--score", "waic", "--ensemble", ",") == 1
    assert "genood train --config" in capsys.readouterr().err
    assert _detect(workspace, "--score", "likelihood,chicken") == 1
    assert "unknown score 'chicken'" in capsys.readouterr().err


def test_train_classifier_and_guard(workspace, capsys) -> None:
    root = workspace["root"]
    out = root / "classifier"
    code = main(
        [
            "train-classifier",
            "--data", f"npz:{root / 'train.npz'}",
            "--val", f"npz:{root / 'test.npz'}",
            "--out", str(out),
            "--epochs", "2",
            "--width", "8",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    assert "accuracy on npz:" in capsys.readouterr().out
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["num_classes"] == 2 and meta["val"]["images"] == 200
    save = root / "guarded"
    assert (
        _detect(workspace, "--score", "typicality", "--guard", str(out), "--save", str(save)) == 0
    )
    assert "in rejected" in capsys.readouterr().out
    report = json.loads((save / "detection.json").read_text())["guard"]["reports"]["typicality"]
    assert report["ood_rejection_rate"] > 0.9
    assert report["in_rejection_rate"] < 0.3
    assert report["accuracy_accepted"] is not None


def test_the_classifier_scores_sit_next_to_the_density_scores(workspace, capsys) -> None:
    root = workspace["root"]
    assert _detect(workspace, "--score", "msp,likelihood") == 1
    assert "--guard DIR" in capsys.readouterr().err  # msp needs the classifier, named with its fix
    out = root / "classifier-msp"
    train = ["train-classifier", "--data", f"npz:{root / 'train.npz'}", "--out", str(out)]
    assert main([*train, "--epochs", "1", "--width", "4", "--no-progress"]) == 0
    save = root / "msp-energy"
    args = ["--score", "msp,energy,likelihood", "--guard", str(out), "--save", str(save)]
    assert _detect(workspace, *args) == 0
    printed = capsys.readouterr().out
    assert "msp " in printed and "energy " in printed and "in rejected" in printed
    document = json.loads((save / "detection.json").read_text())
    assert {"msp", "energy", "likelihood"} <= set(document["scores"])
    assert {"msp", "energy", "likelihood"} <= set(document["guard"]["reports"])
    assert (save / "detectors" / "msp" / "detector.json").is_file()


def test_calibration_set_replaces_the_hold_out(workspace) -> None:
    root = workspace["root"]
    save = root / "calibrated"
    calibration = f"npz:{root / 'train.npz'}"
    args = ("--score", "likelihood", "--calibration", calibration, "--save", str(save))
    assert _detect(workspace, *args) == 0
    images = json.loads((save / "detection.json").read_text())["images"]
    assert (images["fit"], images["calibration"], images["in"]) == (300, 300, 200)
    assert images["held_out_from"] == calibration


def test_several_ood_sets_share_one_fitted_detector(workspace, capsys) -> None:
    root = workspace["root"]
    save = root / "robust"
    probes = f"probe:constant:1x8x8,probe:inverted:npz:{root / 'test.npz'}"
    args = ("--score", "likelihood,typicality", "--save", str(save), "--out", probes)
    assert _detect(workspace, *args) == 0
    printed = capsys.readouterr().out
    assert "against every OOD set" in printed and "worst AUROC" in printed
    document = json.loads((save / "detection.json").read_text())
    main_pair = document["scores"]
    robustness = document["robustness"]
    assert set(robustness) == {"probe:constant:1x8x8", f"probe:inverted:npz:{root / 'test.npz'}"}
    assert robustness["probe:constant:1x8x8"]["n"] == 2000
    for entry in robustness.values():
        for name, values in entry["scores"].items():
            # one detector, fitted and calibrated once: the same threshold for every OOD set
            assert values["threshold"] == main_pair[name]["threshold"]
            assert 0.0 <= values["auroc"] <= 1.0
    with np.load(save / "scores.npz") as arrays:
        assert arrays["typicality_out_probe_constant_1x8x8"].shape == (2000,)
    # constant images are far from typical for a model of blobs
    assert robustness["probe:constant:1x8x8"]["scores"]["typicality"]["auroc"] > 0.9


def test_help_documents_every_score(capsys) -> None:
    from genood.ood import available
    from genood.ood.registry import detector_class

    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = capsys.readouterr().out
    for score in available():
        grammar = detector_class(score).grammar or score
        assert f"\n  {grammar} " in text, f"detect --help does not document {score!r}"


def test_out_specs_split_on_commas_but_not_inside_a_path() -> None:
    from genood.experiments.detect import split_specs

    assert split_specs(["mnist-10k,probe:noise:1x8x8", "npz:/data/a,b.npz,fashion-mnist:test"]) == [
        "mnist-10k",
        "probe:noise:1x8x8",
        "npz:/data/a,b.npz",
        "fashion-mnist:test",
    ]
    with pytest.raises(ValueError, match="empty data set spec"):
        split_specs(["mnist-10k,,probe:noise:1x8x8"])


def test_a_second_detect_makes_no_model_pass(workspace, capsys, monkeypatch) -> None:
    scores = "likelihood,typicality,complexity,dos,dos+typicality"
    assert _detect(workspace, "--score", scores, "--save", str(workspace["root"] / "first")) == 0
    from genood.models import scoring

    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran again on sets whose statistics are stored")

    monkeypatch.setattr(scoring, "score_images", no_pass)
    assert _detect(workspace, "--score", scores, "--save", str(workspace["root"] / "again")) == 0
    assert "statistics: 0 computed" in capsys.readouterr().out
    first = json.loads((workspace["root"] / "first" / "detection.json").read_text())
    again = json.loads((workspace["root"] / "again" / "detection.json").read_text())
    assert first["scores"] == again["scores"]


def test_default_scores_skip_ratio_without_a_background(workspace, tmp_path, capsys) -> None:
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(workspace["run"], bare, ignore=shutil.ignore_patterns("background", "detect"))
    root = workspace["root"]
    code = main(
        ["detect", "--run", str(bare), "--in", f"npz:{root / 'test.npz'}",
         "--out", f"npz:{root / 'noise.npz'}", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "ratio skipped: no background model" in out
    document = json.loads(next((bare / "detect").glob("*/detection.json")).read_text())
    assert set(document["scores"]) == {RECOMMENDED, "likelihood", "typicality", "complexity"}


def test_a_reproduce_folder_is_a_run(workspace, tmp_path, capsys) -> None:
    import shutil

    folder = tmp_path / "repro"
    shutil.copytree(
        workspace["run"],
        folder / "models" / "main",
        ignore=shutil.ignore_patterns("background", "ensemble", "detect", "statistics"),
    )
    shutil.copytree(workspace["run"] / "background", folder / "models" / "background")
    shutil.copytree(workspace["run"] / "ensemble" / "seed-1", folder / "models" / "member-1")
    root = workspace["root"]
    code = main(
        ["detect", "--run", str(folder), "--in", f"npz:{root / 'test.npz'}",
         "--out", f"npz:{root / 'noise.npz'}", "--score", "ratio,waic", "--no-progress"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert (folder / "statistics" / "index.json").is_file()
    document = json.loads(next((folder / "detect").glob("*/detection.json")).read_text())
    assert set(document["scores"]) == {"ratio", "waic"}


def test_a_limited_run_scores_only_the_images_it_uses(workspace, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(workspace["run"], run, ignore=shutil.ignore_patterns("statistics", "detect"))
    root = workspace["root"]
    code = main(
        ["detect", "--run", str(run), "--in", f"npz:{root / 'test.npz'}",
         "--out", f"npz:{root / 'noise.npz'}", "--score", "likelihood", "--limit", "50",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    index = json.loads((run / "statistics" / "index.json").read_text())
    counts = sorted(entry["n"] for entry in index.values())
    # 200 test images: 60 held out to fit and calibrate, 50 evaluated; 50 of the OOD set
    assert counts == [50, 110]
    document = json.loads(next((run / "detect").glob("*/detection.json")).read_text())
    assert document["images"]["fit"] == 30 and document["images"]["in"] == 50


def test_the_gate_combines_a_padded_glow_with_the_classifier(workspace, tmp_path, capsys) -> None:
    """A run that pads 8x8 to 12x12 and a classifier on the 8x8 images: with --guard and no
    --score, the recommended gate (dos with the classifier's energy) comes first and runs."""
    from genood.ood import RECOMMENDED_GATE
    from genood.train import fit

    root = workspace["root"]
    config = cfg.from_dict(
        {
            "model": {"name": "glow", "hparams": {"levels": 2, "steps": 1, "hidden": 8}},
            "data": {"train": f"npz:{root / 'train.npz'}", "val": "", "pad_to": 12},
            "train": {"steps": 10, "batch_size": 32, "warmup_steps": 2, "device": "cpu",
                      "eval_every": 0, "checkpoint_every": 10, "threads": 1},
        }
    )  # fmt: skip
    run = tmp_path / "padded"
    fit(config, run, progress=False)
    clf = tmp_path / "clf"
    train = ["train-classifier", "--data", f"npz:{root / 'train.npz'}", "--out", str(clf)]
    assert main([*train, "--epochs", "1", "--width", "4", "--no-progress"]) == 0
    save = tmp_path / "gate"
    code = main(
        ["detect", "--run", str(run), "--in", f"npz:{root / 'test.npz'}",
         "--out", f"npz:{root / 'noise.npz'}", "--target-fpr", "0.1", "--no-progress",
         "--guard", str(clf), "--save", str(save)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    document = json.loads((save / "detection.json").read_text())
    assert list(document["scores"])[:2] == [RECOMMENDED_GATE, RECOMMENDED]
    assert RECOMMENDED_GATE in document["guard"]["reports"]
    saved = json.loads(
        (save / "detectors" / RECOMMENDED_GATE.replace(":", "-") / "detector.json").read_text()
    )
    assert saved["config"]["preprocessing"]["pad_to"] == 12
