"""``genood report RUN`` on a plain training run: curve, scored sets, samples; clear refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))

from train_helpers import tiny_config, write_images

from genood.cli import main
from genood.report.training import is_training_run, render_training


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Glow trained 6 steps with one held-out evaluation and a sample grid, one set scored."""
    from genood.train import fit, score_dataset

    folder = tmp_path_factory.mktemp("training")
    train = write_images(folder / "train.npz", 32)
    val = write_images(folder / "val.npz", 16, seed=3)
    config = tiny_config(train, val, sample_every=0)
    run = folder / "run"
    fit(config, run, progress=False)
    score_dataset(run, val, progress=False)
    return run


def test_report_of_a_training_run(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert is_training_run(trained)
    assert main(["report", str(trained)]) == 0
    assert capsys.readouterr().out.strip() == str(trained / "report.html")
    text = (trained / "report.html").read_text()
    assert "training run" in text and "glow" in text
    assert "Held-out bits/dim" in text and "Finished" in text
    assert text.count('<img src="data:image/png;base64,') == 3  # curve, histograms, samples
    assert "npz:" in text  # the scored set's row
    assert "Sampling temperature T = 1" in text.replace(
        "sampling temperature", "Sampling temperature"
    )
    assert (trained / "figures" / "training_curve.png").is_file()
    assert (trained / "figures" / "bpd_histograms.png").is_file()


def test_a_run_with_nothing_scored_says_how_to_score(trained: Path, tmp_path: Path) -> None:
    import shutil

    run = Path(shutil.copytree(trained, tmp_path / "run"))
    shutil.rmtree(run / "scores")
    shutil.rmtree(run / "samples")
    text = render_training(run).read_text()
    assert "Nothing scored yet: genood score --run RUN --dataset SPEC" in text
    assert text.count("<img ") == 1  # the curve only


def test_a_folder_that_is_not_a_training_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("")
    assert not is_training_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="needs config.toml and metrics.jsonl"):
        render_training(tmp_path)
