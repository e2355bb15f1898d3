"""Issue 16's regressions on the training side: what a new user's bad input broke.

Each test runs the real ``genood`` entry point in-process and checks the contract of
``genood.cli``: success, or one line on stderr naming the file or option, and exit status 1.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_helpers import tiny_config, write_images

from genood import config as cfg
from genood.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (2 steps) with scores; tests copy it before changing it."""
    root = tmp_path_factory.mktemp("trained")
    train = write_images(root / "train.npz", 32, seed=1)
    config_path = root / "tiny.toml"
    cfg.save(tiny_config(train, steps=2), config_path)
    run = root / "run"
    assert main(["train", "--config", str(config_path), "--out", str(run), "--no-progress"]) == 0
    assert main(["score", "--run", str(run), "--dataset", train, "--no-progress"]) == 0
    return run


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert err.startswith(f"genood {command}: error: "), err
    return err


def test_a_missing_checkpoint_does_not_wipe_the_run(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run / "checkpoints" / "last.pt").unlink()
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert main(["train", "--out", str(run), "--no-progress"]) == 1
    err = one_line_error(capsys, "train")
    assert "no checkpoint to resume from" in err and "--overwrite" in err
    assert "done.json" in err and "scores/ (1 file)" in err and "metrics.jsonl" in err
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
    assert main(["train", "--out", str(run), "--no-progress", "--overwrite"]) == 0
    assert (run / "done.json").is_file() and not (run / "scores").exists()


def test_no_resume_needs_overwrite_when_the_run_has_results(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--out", str(run), "--no-resume", "--no-progress"]) == 1
    assert "checkpoints/last.pt" in one_line_error(capsys, "train")
    assert (run / "scores").is_dir()


def test_run_files_are_readable_by_others(run: Path) -> None:
    for name in ("config.toml", "checkpoints/last.pt", "metrics.jsonl", "done.json"):
        mode = stat.S_IMODE((run / name).stat().st_mode)
        assert mode & 0o044 == 0o044, f"{name} is {oct(mode)}"  # the suite runs under umask 022


def test_config_pointing_at_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert f"config file {tmp_path} is a folder" in one_line_error(capsys, "train")


def test_an_unwritable_out(
    tmp_path: Path, tiny_data: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"], steps=1), config_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["train", "--config", str(config_path), "--no-progress", "--out"]
    assert main([*argv, str(blocker / "run")]) == 1
    err = one_line_error(capsys, "train")
    assert str(blocker) in err and "Not a directory" in err
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        target, reasons = read_only / "run", ("Permission denied",)
        if _writable(read_only):  # root: permissions do not stop it, sysfs refuses new folders
            if not Path("/sys/kernel").is_dir():
                pytest.skip("running as root without /sys: no unwritable folder to try")
            target = Path("/sys/genood-test/run")
            reasons = ("Operation not permitted", "Read-only file system", "Permission denied")
        assert main([*argv, str(target)]) == 1
        err = one_line_error(capsys, "train")
        assert str(target.parent) in err  # mkdir names the first folder it could not create
        assert any(reason in err for reason in reasons), err
    finally:
        read_only.chmod(0o755)


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
    except PermissionError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.mark.parametrize("name", ["config.toml", "preprocessing.json", "done.json"])
def test_a_corrupt_run_file_is_named(
    run: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (run / name).write_text("not = [valid\n{")
    if name == "config.toml":
        assert main(["train", "--out", str(run), "--no-progress"]) == 1
    else:
        command = ["score", "--run", str(run), "--dataset", "npz:x.npz", "--no-progress"]
        assert main(command) == 1
    err = one_line_error(capsys, "train" if name == "config.toml" else "score")
    assert str(run / name) in err


def test_hparam_that_changes_parameters_is_one_line(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["score", "--run", str(run), "--dataset", "npz:x.npz", "--hparam", "hidden=3"]
    assert main(argv) == 1
    err = one_line_error(capsys, "score")
    assert "change the parameters" in err and "size mismatch" in err and len(err) < 600


@pytest.mark.parametrize("value", ["0", "-1"])
def test_limit_zero_is_refused_everywhere(
    run: Path, tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_images(tmp_path / "d.npz", 4)
    commands = [
        ["score", "--run", str(run), "--dataset", data, "--limit", value],
        ["train-classifier", "--data", data, "--out", str(tmp_path / "c"), "--limit", value],
        ["data", "show", data, "--limit", value],
    ]
    for argv in commands:
        assert main(argv) == 1, argv
        err = one_line_error(capsys, argv[0])
        assert f"--limit must be at least 1, got {value}" in err
    assert not (tmp_path / "c").exists() and not (run / "scores" / "npz-d.npz").exists()


def test_train_classifier_on_zero_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8), np.uint8), labels=np.zeros(0))
    argv = ["train-classifier", "--data", f"npz:{tmp_path / 'empty.npz'}", "--out", "c"]
    assert main(argv) == 1
    assert "holds no images" in one_line_error(capsys, "train-classifier")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.grad_clip=-1.0", "train.grad_clip must be >= 0, got -1.0"),
        ("train.time_budget_s=-5", "train.time_budget_s must be >= 0, got -5.0"),
        ("data.val_limit=-1", "data.val_limit must be >= 0, got -1"),
        ("train.batch_size=0", "train.batch_size must be at least 1"),
        ("train.lr=nan", "train.lr must be >= 0, got nan"),
        ("train.steps.x=1", "train.steps is a value, not a table"),
        ("train=5", "[train] must be a table of keys"),
    ],
)
def test_out_of_range_settings_are_refused(
    tmp_path: Path,
    tiny_data: dict[str, str],
    override: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"], steps=1), config_path)
    argv = ["train", "--config", str(config_path), "--out", str(tmp_path / "r"), "--set", override]
    assert main(argv) == 1
    assert message in one_line_error(capsys, "train")
    assert not (tmp_path / "r").exists()


def test_a_missing_data_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["data", "show", "mnist", "--data-dir", str(tmp_path / "nope")],
        ["train", "--config", "x.toml", "--data-dir", str(tmp_path / "nope")],
    ):
        assert main(argv) == 1
        err = one_line_error(capsys, argv[0])
        assert f"--data-dir {tmp_path / 'nope'} does not exist" in err


def test_train_background_help_names_its_own_folder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train-background", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "RUN/background/checkpoints/last.pt" in text and "deletes RUN/background's" in text


def test_strings_round_trip_through_config_toml(tmp_path: Path) -> None:
    config = tiny_config('npz:a "quoted"\\path\nwith\x7fcontrol\tchars.npz')
    config.model.hparams["odd key"] = 1
    cfg.save(config, tmp_path / "c.toml")
    assert cfg.load(tmp_path / "c.toml") == config


def test_the_console_command_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    """The issue's ``genood train --config configs --out DATA/r``, as a real process."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "genood", "train", "--config", "configs", "--out", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "genood train: error: config file configs is a folder; give a TOML file, e.g. "
        "configs/fashion-mnist-cpu.toml"
    )
    assert list(tmp_path.iterdir()) == []
