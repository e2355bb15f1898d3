"""report.html: verdicts first, every figure embedded, tables stated plainly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genood.report import render
from genood.report.html import page
from genood.report.schema import validate_results


def test_render_writes_a_self_contained_report(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    out = render(run)
    assert out == run / "report.html"
    text = out.read_text(encoding="utf-8")
    results = json.loads((run / "results.json").read_text())
    # The verdict table leads; then run facts, data sets, detection, analyses, figures.
    order = [text.index(f'id="{s}"') for s in ("verdict-table", "run", "datasets-table",
                                                 "detection-table", "analyses", "figures")]  # fmt: skip
    assert order == sorted(order)
    # Every figure embedded as a data URI; nothing fetched from anywhere.
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == len(results["figures"]) == 4
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in text and "https://" not in text
    assert "OOD is the positive class" in text
    assert "D = 64" in text and "Glow with 2 levels x 2 steps" in text
    # Verdicts: three statuses styled apart; the summary never counts a claim not run.
    assert 'class="reproduced" data-status="reproduced"' in text
    assert 'class="not-run" data-status="not run at this budget"' in text
    assert 'class="not-reproduced" data-status="not reproduced"' in text
    assert "1 of 2 claims tested reproduced; 1 not run at this budget" in text
    # Claims text is escaped.
    assert "&lt;than&gt; the test set &amp; more" in text
    # Captions: custom, then the pipeline's keys.
    assert "Sixteen samples at temperature 1." in text and "Figure 1)" in text
    # Analyses: purpose-made tables.
    assert 'class="second-order"' in text and "same sign as measured" in text
    assert 'class="decomposition"' in text and 'class="ensembles"' in text
    assert "0.50" in text  # graying factor column


def test_missing_figure_is_visible_not_fatal(copy_run: Path) -> None:
    (copy_run / "figures" / "graying.png").unlink()
    with pytest.warns(UserWarning, match="graying"):
        text = render(copy_run).read_text()
    assert "missing figure file: figures/graying.png" in text


def test_invalid_results_are_refused(copy_run: Path) -> None:
    results = json.loads((copy_run / "results.json").read_text())
    results["claims"][1]["reproduced"] = True  # a claim not run must never count
    (copy_run / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match=r"claims\[1\].reproduced"):
        render(copy_run)
    (copy_run / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        render(copy_run)
    with pytest.raises(FileNotFoundError, match="results.json"):
        render(copy_run / "nowhere")


def test_page_without_figures_or_detection(results: dict, tmp_path: Path) -> None:
    results["detection"] = {}
    text = page(results, tmp_path)
    assert 'id="verdict-table"' in text and 'id="figures"' not in text
    assert 'id="detection"' not in text


def test_reverse_direction_is_stated_above_the_verdicts(results: dict, tmp_path: Path) -> None:
    assert 'id="direction"' not in page(results, tmp_path)
    results["expect_phenomenon"] = False
    assert 'id="direction"' in page(results, tmp_path)
    results["expect_phenomenon"] = "no"
    with pytest.raises(ValueError, match="expect_phenomenon"):
        validate_results(results)
