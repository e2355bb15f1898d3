"""Every figure function writes a readable, small PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genood.report import figures


def _check_png(path: Path, returned: Path) -> None:
    assert returned == path and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100
    assert path.stat().st_size < 250_000


def test_histogram_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = {"in:test": rng.normal(3, 0.3, 200), "ood:test": rng.normal(2, 0.3, 200)}
    out = tmp_path / "sub" / "bpd.png"
    _check_png(out, figures.bpd_histograms(scores, out, title="Figure 1", num_dims=64))
    # Constant volume: a degenerate log-det histogram still draws.
    terms = {k: {"log_pz": rng.normal(-100, 5, 50), "logdet": np.full(50, 3.0)} for k in scores}
    out = tmp_path / "decomposition.png"
    _check_png(out, figures.decomposition_histograms(terms, out, num_dims=64))
    out = tmp_path / "asymmetry.png"
    _check_png(out, figures.asymmetry_histograms(scores, scores, out, num_dims=64))
    with pytest.raises(ValueError, match="no finite values"):
        figures.bpd_histograms({"a": np.array([np.nan])}, tmp_path / "x.png")


def test_curves_and_bars(tmp_path: Path) -> None:
    rows = [
        {"step": s, "val_bpd": 3 - s / 1000, "track_bpd": 2.5 - s / 1000, "lr": 1e-3}
        for s in range(0, 1000, 100)
    ]
    out = tmp_path / "training.png"
    _check_png(out, figures.training_curves(rows, out, labels={"val_bpd": "in:test"}))
    events = [
        {"event": "train", "step": 10, "loss_bpd": 4.0},
        {"event": "eval", "step": 10, "eval_bpd": 3.5, "track_bpd": {"mnist:test": 2.9}},
        {"event": "eval", "step": 20, "eval_bpd": 3.3, "track_bpd": {"mnist:test": 2.8}},
    ]
    out = tmp_path / "events.png"
    _check_png(out, figures.training_curves(events, out))
    with pytest.raises(ValueError, match="no bits/dim columns"):
        figures.training_curves([{"step": 1, "loss": 2.0}], tmp_path / "x.png")
    out = tmp_path / "graying.png"
    curve = [(1.0, 3.0), (0.5, 2.6), (0.0, 2.2)]
    _check_png(out, figures.graying_plot({"in:test": curve, "ood:test": curve}, out))
    out = tmp_path / "second.png"
    gaps = {"measured": 120.0, "paper_formula": 40.0, "hessian_variance": -3.0}
    _check_png(out, figures.second_order_plot([-12.3, -6.5, -14.5], gaps, out))
    rng = np.random.default_rng(1)
    out = tmp_path / "ensemble.png"
    ens = figures.ensemble_plot(rng.normal(3, 0.2, (4, 100)), rng.normal(2.5, 0.2, (4, 90)), out)
    _check_png(out, ens)


@pytest.mark.parametrize("channels", [1, 3])
def test_sample_grid(tmp_path: Path, channels: int) -> None:
    images = np.random.default_rng(2).integers(0, 256, (20, channels, 8, 8), dtype=np.uint8)
    out = tmp_path / "samples.png"
    _check_png(out, figures.sample_grid(images, out, title="samples"))
    with pytest.raises(ValueError, match="uint8"):
        figures.sample_grid(images.astype(np.float32), out)


def test_smear_curve(tmp_path: Path) -> None:
    out = tmp_path / "smear.png"
    returned = figures.smear_curve(
        [0.0, 1e-3, 1e-2],
        [4.7, 4.8, None],  # a missing value leaves a hole, not an error
        {"gap (C1)": [-0.57, -0.4, -0.1], "volume part log|det J|": [0.03, 0.1, None]},
        {"raw likelihood": [0.21, 0.3, 0.45], "dos+typicality": [0.97, 0.96, 0.9]},
        out,
        ood_label="mnist-10k",
    )
    _check_png(out, returned)
    with pytest.raises(ValueError, match="no lambdas"):
        figures.smear_curve([], [], {}, {}, tmp_path / "empty.png")
