"""Figures saved with their inputs can be redrawn identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genood.report.store import DATA_DIR, redraw_figures, save_figure


def test_save_and_redraw(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 3, 4, 4), dtype=np.uint8)
    relative = save_figure(tmp_path, "samples", "sample_grid", images=images, title="s")
    assert relative == "figures/samples.png"
    save_figure(tmp_path, "gray", "graying_plot", curves={"a": [(1.0, 2.0), (0.0, 1.5)]}, title="g")
    first = (tmp_path / relative).read_bytes()
    (tmp_path / relative).unlink()
    assert redraw_figures(tmp_path) == {"gray": "figures/gray.png", "samples": relative}
    assert (tmp_path / relative).read_bytes() == first
    assert (tmp_path / DATA_DIR / "samples.npz").is_file()


def test_bad_keys_and_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown figure kind"):
        save_figure(tmp_path, "x", "pie_chart", values=np.ones(3))
    with pytest.raises(ValueError, match="figure key"):
        save_figure(tmp_path, "../x", "graying_plot", curves={"a": [(1.0, 2.0)]})
    with pytest.raises(TypeError, match="cannot store"):
        save_figure(tmp_path, "x", "graying_plot", curves={"a": [(1.0, 2.0)]}, title=object())
    assert redraw_figures(tmp_path / "nothing-here") == {}
