"""The run-folder lock (issue 16, defect 2): one writer at a time, freed when the holder dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from train_helpers import tiny_config

from genood import config as cfg
from genood.cli import main
from genood.train import fit, read_metrics
from genood.train.lock import LOCK_NAME, RunLock, RunLockedError, holder

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from genood.train.lock import RunLock\n"
    "RunLock(sys.argv[1], command='genood train --out ' + sys.argv[1]).acquire()\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / 'run'``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_second_writer_fails_naming_the_holder(
    tmp_path: Path, held: subprocess.Popen[str]
) -> None:
    run = tmp_path / "run"
    with pytest.raises(RunLockedError) as caught:
        RunLock(run).acquire()
    message = str(caught.value)
    assert "\n" not in message
    assert f"pid {held.pid} on {socket.gethostname()}" in message
    assert f"genood train --out {run}" in message
    assert holder(run)["pid"] == held.pid


def test_kill_9_releases_the_lock(tmp_path: Path, held: subprocess.Popen[str]) -> None:
    run = tmp_path / "run"
    os.kill(held.pid, signal.SIGKILL)
    held.wait()
    with RunLock(run, command="second"):  # the kernel dropped the dead holder's flock
        assert holder(run)["command"] == "second" and holder(run)["pid"] == os.getpid()
    assert holder(run) == {}  # released: the file stays, empty
    assert (run / LOCK_NAME).is_file()


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with RunLock(tmp_path), RunLock(tmp_path):
        pass
    with RunLock(tmp_path):  # free again
        assert holder(tmp_path)["pid"] == os.getpid()


def test_training_into_a_locked_folder_fails_and_changes_nothing(
    tmp_path: Path,
    tiny_data: dict[str, str],
    held: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    config_path = tmp_path / "tiny.toml"
    cfg.save(tiny_config(tiny_data["train"], steps=2), config_path)
    argv = ["train", "--config", str(config_path), "--out", str(run), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{run} is in use by pid {held.pid}" in err
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing else written
    held.kill()
    held.wait()
    assert main(argv) == 0
    assert [e["event"] for e in read_metrics(run / "metrics.jsonl")].count("start") == 1


def test_fit_holds_the_lock_while_it_trains(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    seen: list[dict[str, object]] = []
    config = tiny_config(tiny_data["train"], steps=2)
    original = cfg.dumps_toml

    def spy(values: dict[str, object]) -> str:  # called by fit while it writes config.toml
        seen.append(holder(run))
        return original(values)

    monkeypatch.setattr(cfg, "dumps_toml", spy)
    fit(config, run, progress=False)
    assert seen and seen[0]["pid"] == os.getpid()
    assert holder(run) == {}
    json.dumps(seen)  # the holder record is plain JSON
