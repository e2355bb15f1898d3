"""``genood reproduce`` end to end on tiny synthetic data in the real on-disk formats.

CIFAR-10 (the binary release tarball) and SVHN (``test_32x32.mat``) are written in exactly their
published formats, so the whole pipeline runs: data layer, training of every model a budget
names, scoring, detection, analyses, results.json (validated) and report.html.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))  # the data tests' file builders

from data_builders import cifar_arrays, make_cifar_binary_tar, trust

import genood.data.sources as sources
from genood.data.catalog import CIFAR10, SVHN
from genood.data.formats.svhn import write_svhn_mat
from genood.experiments.reproduce import reproduce
from genood.experiments.spec import ALL_CLAIMS, BudgetSpec, DataSpec, Experiment, load_experiment
from genood.report.schema import validate_results

TINY_GLOW = {"levels": 2, "steps": 1, "hidden": 8, "coupling": "affine", "permutation": "lu"}
TINY_TRAIN = {"steps": 3, "batch_size": 8, "warmup_steps": 1, "checkpoint_every": 0, "threads": 1}


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", no_network)


@pytest.fixture
def synthetic_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CIFAR-10 with smooth, low-variance images; SVHN with flatter ones (like the real pair)."""
    _offline(monkeypatch)
    root = tmp_path / "data"
    rng = np.random.default_rng(0)

    def smooth(n: int, spread: int) -> np.ndarray:
        base = rng.integers(128 - spread, 128 + spread, (n, 3, 1, 1))
        noise = rng.integers(-spread, spread + 1, (n, 3, 32, 32))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    cifar = root / "cifar10"
    cifar.mkdir(parents=True)
    batches = {f"data_batch_{i}": (smooth(16, 60), cifar_arrays(16, i)[1]) for i in range(1, 6)}
    batches["test_batch"] = (smooth(100, 60), cifar_arrays(100, 9)[1])
    make_cifar_binary_tar(cifar / "cifar-10-binary.tar.gz", batches)
    trust(monkeypatch, CIFAR10, cifar, train=80, test=100)
    svhn = root / "svhn"
    svhn.mkdir()
    write_svhn_mat(svhn / "test_32x32.mat", smooth(40, 20), rng.integers(0, 10, 40))
    trust(monkeypatch, SVHN, svhn, test=40)
    return root


def _tiny(claims: list[str]) -> BudgetSpec:
    return BudgetSpec(
        claims=claims,
        model={"name": "glow", "hparams": TINY_GLOW},
        train=TINY_TRAIN,
        background_steps=2,
        ensemble=2,
        ensemble_steps=0,  # as many as the main model: WAIC needs equally trained members
        cv_glow={**TINY_GLOW, "coupling": "additive", "learn_prior": False},
        cv_glow_steps=4,
        score_limit=100,
        graying_factors=[1.0, 0.5, 0.0],
        detectors=[
            "likelihood",
            "typicality",
            "ratio",
            "complexity",
            "complexity+typicality",
            "waic",
        ],
        scaled_down=["a tiny Glow trained for 3 steps: a test of the pipeline, not of the paper"],
    )


@pytest.mark.slow
def test_cifar10_vs_svhn_end_to_end(synthetic_data: Path, tmp_path: Path) -> None:
    experiment = load_experiment("cifar10-vs-svhn")
    experiment = replace(experiment, budgets={"tiny": _tiny(list(ALL_CLAIMS))})
    # C2 runs the reverse experiment, which needs SVHN train: leave it out of this test.
    experiment = replace(experiment, reverse="")
    out = tmp_path / "run"
    report = reproduce(experiment, "tiny", out, data_dir=synthetic_data, progress=False)
    assert report == out / "report.html" and report.exists()
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert results["num_dims"] == 3 * 32 * 32
    assert set(results["datasets"]) == {"cifar10:train", "cifar10:test", "svhn:test"}
    assert {"likelihood", "typicality", "ratio", "complexity+typicality", "waic"} <= set(
        results["detection"]
    )
    # Detectors also meet generated probe sets, at the in-distribution shape (RGB here).
    probes = results["detection"]["typicality"]["probes"]
    assert {"probe:noise:3x32x32", "probe:letters:3x32x32"} <= set(probes)
    assert any(label.startswith("probe:inverted") for label in probes)
    assert all(0.0 <= row["auroc"] <= 1.0 for row in probes.values())
    # ... every probe of the declared protocol, under its group and role.
    roles = {label.split(" ")[0].split(":")[1]: row["role"] for label, row in probes.items()}
    assert roles["noise"] == roles["letters"] == roles["vflip"] == "validation"
    assert roles["constant"] == roles["rot90"] == roles["font-digits"] == "held-out"
    assert roles["hflip"] == "outside the goal"
    assert {row["group"] for row in probes.values()} == {"far-OOD", "near-OOD", "transformed"}
    # Every AUROC of the table carries its bootstrap interval, around it.
    for cell in [*results["detection"].values(), *probes.values()]:
        low, high = cell["auroc_ci"]
        assert low <= cell["auroc"] + 1e-9 and cell["auroc"] - 1e-9 <= high
    assert [label for label, row in probes.items() if not row["in_goal"]] == [
        "probe:hflip (cifar10:test)"
    ]
    ids = [c["id"] for c in results["claims"]]
    assert ids == list(ALL_CLAIMS)
    statuses = {c["id"]: c["status"] for c in results["claims"]}
    assert statuses["C2"] == "not run at this budget"
    assert all(statuses[c] in ("reproduced", "not reproduced") for c in ids if c != "C2")
    for relative in results["figures"].values():
        assert (out / relative).is_file()
    html = report.read_text()
    assert "C7" in html and "not run at this budget" in html and 'id="probe-table"' in html
    assert "calibrated threshold (5% FPR)" in html  # the rows' own target_fpr

    # A second run reuses every model, score and table: it must not train again.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "models").rglob("last.pt")}
    reproduce(experiment, "tiny", out, data_dir=synthetic_data, progress=False)
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_missing_data_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    experiment = load_experiment("cifar10-vs-svhn")
    experiment = replace(experiment, budgets={"tiny": _tiny(["C1"])})
    with pytest.raises(FileNotFoundError, match="genood data fetch cifar10"):
        reproduce(experiment, "tiny", tmp_path / "run", data_dir=tmp_path, progress=False)


def test_single_split_set_is_held_out_and_never_trained_on(tmp_path: Path) -> None:
    """mnist-10k-like sets: ``holdout`` test images are split off with a fixed seed."""
    rng = np.random.default_rng(1)
    digits = rng.integers(0, 256, (200, 1, 8, 8), dtype=np.uint8)
    other = rng.integers(0, 64, (40, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", images=digits, labels=np.arange(200) % 10)
    np.savez(tmp_path / "other.npz", images=other)
    experiment = Experiment(
        name="holdout",
        description="",
        data=DataSpec(
            in_train=f"npz:{tmp_path / 'digits.npz'}",
            in_test=f"npz:{tmp_path / 'digits.npz'}",
            ood=[f"npz:{tmp_path / 'other.npz'}"],
            holdout=100,
        ),
        budgets={
            "tiny": replace(_tiny(["C1", "C4"]), detectors=["likelihood"], background_steps=0)
        },
    )
    out = tmp_path / "run"
    reproduce(experiment, "tiny", out, progress=False)
    results = json.loads((out / "results.json").read_text())
    name = f"npz:{tmp_path / 'digits.npz'}"
    assert results["datasets"][f"{name}:held-out"]["n"] == 100
    assert results["datasets"][f"{name}:held-in"]["n"] == 100
    with (
        np.load(out / "data" / "in-train.npz") as train,
        np.load(out / "data" / "in-test.npz") as test,
    ):
        seen = {row.tobytes() for row in train["images"]}
        assert not any(row.tobytes() in seen for row in test["images"])
    config = (out / "models" / "main" / "config.toml").read_text()
    assert str((out / "data" / "in-train.npz").resolve()) in config


FAMILIES = {
    "pixelcnn": {"filters": 4, "resnet_blocks": 1, "num_mixtures": 2},
    "vae": {"latent_dim": 2, "hidden": 4, "downsamples": 2, "iw_samples": 2},
    "hvae": {"latent_channels": [1, 1, 1], "hidden": 4, "blocks": 0, "iw_samples": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_experiment_picks_the_model_family(
    family: str, synthetic_data: Path, tmp_path: Path
) -> None:
    detectors = ["likelihood", "typicality"] + (["llr"] if family == "hvae" else [])
    budget = BudgetSpec(
        claims=["C1", "C4", "C7"],
        model={"name": family, "hparams": FAMILIES[family]},
        train={**TINY_TRAIN, "steps": 2, "sample_every": -1},  # the report still draws samples
        score_limit=12,
        graying_factors=[1.0, 0.0],
        detectors=detectors,
        scaled_down=[f"a tiny {family} trained for 2 steps: a test of the pipeline"],
    )
    experiment = replace(load_experiment("cifar10-vs-svhn"), budgets={"tiny": budget}, reverse="")
    out = tmp_path / "run"
    reproduce(experiment, "tiny", out, data_dir=synthetic_data, progress=False)
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert set(results["detection"]) == set(detectors)
    claims = {c["id"]: c for c in results["claims"]}
    assert claims["C1"]["status"] in ("reproduced", "not reproduced")
    assert claims["C7"]["status"] in ("reproduced", "not reproduced")
    # Only a flow has log p(z) and a log-det: C4 says why it does not apply.
    assert claims["C4"]["status"] == "not run at this budget"
    assert claims["C4"]["measured"].startswith("not applicable")


def test_background_trains_as_long_as_the_main_model(tmp_path: Path) -> None:
    """Ren et al. train both models alike: by default the background gets the main model's
    reached steps (done.json) and no time budget; a budget may still name its own steps."""
    from types import SimpleNamespace

    from genood.experiments.reproduce import _background_config

    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "done.json").write_text('{"step": 1234}')
    ctx = SimpleNamespace(
        data=DataSpec(in_train="npz:x.npz", in_test="npz:y.npz", ood=[]),
        model_dir=lambda name: tmp_path / name,
    )
    spec = replace(_tiny(["C1"]), background_steps=0, train={**TINY_TRAIN, "steps": 2400})
    spec.train["time_budget_s"] = 660.0
    config = _background_config(ctx, spec)  # type: ignore[arg-type]
    assert (config.train.steps, config.train.time_budget_s) == (1234, 0.0)
    assert config.data.mutation_rate == 0.2 and config.train.l2 == 10.0
    explicit = _background_config(ctx, replace(spec, background_steps=600))  # type: ignore[arg-type]
    assert explicit.train.steps == 600


def test_no_shipped_budget_trains_a_shorter_background() -> None:
    from genood.experiments.spec import available

    for name in available():
        for budget in load_experiment(name).budgets.values():
            assert budget.background_steps == 0, (name, budget)
