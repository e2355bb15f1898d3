"""``genood report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import pytest

from genood.cli import main


def test_report_command_redraws_and_renders(
    copy_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy_run / "report.html").unlink(missing_ok=True)
    (copy_run / "figures" / "samples.png").unlink()
    assert main(["report", str(copy_run)]) == 0
    out = capsys.readouterr().out
    assert "redrew 4 figures" in out and str(copy_run / "report.html") in out
    assert (copy_run / "figures" / "samples.png").is_file()
    assert 'id="verdict-table"' in (copy_run / "report.html").read_text()


def test_report_command_without_redraw(copy_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(copy_run), "--no-redraw"]) == 0
    assert "redrew" not in capsys.readouterr().out


def test_report_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "genood report: error: run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "has neither results.json (genood reproduce) nor config.toml and metrics.jsonl" in error
    assert len(error.strip().splitlines()) == 1
