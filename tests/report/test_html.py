"""report.html: verdicts first, every figure embedded, tables stated plainly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
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
    # Captions: the pipeline's keys; the sample grid states its sampling temperature.
    assert "Sampling temperature T = 0.7" in text and "Figure 1)" in text
    # Analyses: purpose-made tables.
    assert 'class="second-order"' in text and "same sign as measured" in text
    assert 'class="decomposition"' in text and 'class="ensembles"' in text
    assert "0.50" in text  # graying factor column
    # The CV-Glow's curve is drawn (both series), under a title, not a table of lists.
    section = text.split('id="analysis-cv_glow_training"', 1)[1].split("<h3", 1)[0]
    assert "CV-Glow during training (C5)" in text and "Cv glow training" not in text
    assert section.count("<polyline") == 2 and "<table" not in section
    assert "lower bits/dim (is more likely) at 2 of 3 evaluations" in section
    # The probe table: short, breakable set names; AUROC over the share rejected.
    probes = text.split('id="probe-table"', 1)[1].split("</table>", 1)[0]
    shown = probes.replace("<wbr>", "")  # break opportunities are not text
    assert "inverted: fashion-mnist:test" in shown and "probe:" not in shown
    assert "fashion-<wbr>mnist:<wbr>test" in probes
    assert '0.912<br><span class="share">87% &middot; 0.300</span>' in probes


def test_a_custom_caption_wins_and_a_grid_without_temperature_says_so(copy_run: Path) -> None:
    from genood.report.store import save_figure

    results = json.loads((copy_run / "results.json").read_text())
    results["figure_captions"] = {"samples": "Sixteen samples."}
    grid = np.zeros((4, 1, 8, 8), np.uint8)
    results["figures"]["old_samples"] = save_figure(
        copy_run, "old_samples", "sample_grid", images=grid
    )
    (copy_run / "results.json").write_text(json.dumps(results))
    text = render(copy_run).read_text()
    assert "Sixteen samples." in text
    assert "The sampling temperature was not recorded." in text


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


def test_the_probe_table_states_the_rows_own_target_fpr(copy_run: Path) -> None:
    results = json.loads((copy_run / "results.json").read_text())
    for row in results["detection"].values():
        row["target_fpr"] = 0.1
    (copy_run / "results.json").write_text(json.dumps(results))
    note = render(copy_run).read_text().split('id="probe-table"', 1)[0].rsplit("<h3", 1)[1]
    assert "calibrated threshold (10% FPR)" in note
    for row in results["detection"].values():  # a results.json written before the field
        del row["target_fpr"]
    (copy_run / "results.json").write_text(json.dumps(results))
    note = render(copy_run).read_text().split('id="probe-table"', 1)[0].rsplit("<h3", 1)[1]
    assert "calibrated threshold &middot;" in note and "FPR) &middot;" not in note


def test_a_probe_cell_shows_the_aurocs_interval(copy_run: Path) -> None:
    results = json.loads((copy_run / "results.json").read_text())
    for row in results["detection"].values():
        for cell in row["probes"].values():
            cell["auroc_ci"] = [0.9, 0.925]
    (copy_run / "results.json").write_text(json.dumps(results))
    probes = render(copy_run).read_text().split('id="probe-table"', 1)[1].split("</table>", 1)[0]
    assert '0.912<br><span class="ci">0.900&ndash;0.925</span><br><span class="share">87%' in probes
