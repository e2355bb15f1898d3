"""``genood reproduce`` on a text experiment, end to end at a tiny budget (generated texts only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genood.cli import main
from genood.experiments.text_spec import available, is_text_experiment, load_text_experiment

EXPERIMENT = """
name = "text-tiny"
description = "a tiny text experiment"
[forward]
in_train = "textfile:{train}"
in_test = "textfile:{test}"
ood = ["text:repeat-char:test", "text:repeat-word:test", "textfile:{absent}"]
[reverse]
in_train = "textfile:{test}"
in_test = "textfile:{train}"
ood = ["text:repeat-char:test"]
[budget.quick]
score_limit = 40
reference_limit = 40
bootstrap = 5
[budget.quick.model]
name = "bytelm"
hparams = {{ embed = 8, hidden = 16 }}
[budget.quick.train]
steps = 6
batch_size = 8
optimizer = "adam"
lr = 1e-2
warmup_steps = 1
threads = 1
device = "cpu"
checkpoint_every = 3
eval_every = 0
sample_every = -1
"""


def _texts(path: Path, seed: int) -> Path:
    lines = [f"fortune number {i * 7 + seed}: the quick brown fox {i % 13}" for i in range(60)]
    path.write_text("\n%\n".join(lines) + "\n")
    return path


def test_a_text_experiment_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    toml = tmp_path / "tiny.toml"
    train, test = _texts(tmp_path / "train.txt", 0), _texts(tmp_path / "test.txt", 3)
    toml.write_text(EXPERIMENT.format(train=train, test=test, absent=tmp_path / "absent.txt"))
    assert is_text_experiment(str(toml))
    out = tmp_path / "run"
    assert (
        main(["reproduce", str(toml), "--budget", "quick", "--out", str(out), "--no-progress"]) == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "text" and set(results["directions"]) == {"forward", "reverse"}
    forward = results["directions"]["forward"]
    assert forward["steps"] == 6
    assert forward["ood"] == ["text:repeat-char:test", "text:repeat-word:test"]
    assert list(forward["missing"]) == [f"textfile:{tmp_path / 'absent.txt'}"]
    for label in forward["ood"]:
        for score in ("likelihood", "typicality", "complexity", "complexity:lzma"):
            row = forward["detection"][label][score]
            assert 0.0 <= row["low"] <= row["high"] <= 1.0 and 0.0 <= row["auroc"] <= 1.0
    char_set = forward["sets"]["text:repeat-char:test"]
    assert char_set["zlib_bpc"] < forward["sets"][forward["in_test"]]["zlib_bpc"]
    assert 0 < char_set["bpc"] < 20 and char_set["n"] <= 40
    (claim,) = results["claims"]
    assert claim["id"] == "L1" and claim["status"] in ("reproduced", "not reproduced")
    assert "text:repeat-char:test" in claim["measured"]
    html = (out / "report.html").read_text()
    assert "L1" in html and "AUROC complexity (zlib)" in html and "repeat-word" in html
    assert html.count("data:image/png;base64,") == 2  # one histogram per direction
    assert (out / forward["figure"]).is_file()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0  # re-rendered from results.json
    assert (out / "report.html").read_text() == html


def test_the_shipped_text_experiment_parses() -> None:
    assert "text-fortunes-en-vs-others" in available()
    exp = load_text_experiment("text-fortunes-en-vs-others")
    assert {"quick", "cpu", "paper"} <= set(exp.budgets)
    assert exp.reverse is not None and exp.reverse.in_train == "text:fortunes-de:train"
    for budget in exp.budgets.values():
        config = budget.run_config(exp.forward)
        assert config.model.name == "bytelm" and config.data.train == "text:fortunes-en:train"
    assert exp.budgets["cpu"].train["threads"] == 1
    with pytest.raises(ValueError, match="no budget 'huge'"):
        exp.budget("huge")


def test_an_unknown_experiment_lists_the_text_experiments_too() -> None:
    from genood.experiments.spec import load_experiment

    with pytest.raises(ValueError, match="text: text-fortunes-en-vs-others"):
        load_experiment("no-such-experiment")
