"""A training run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_helpers import assert_bitwise_equal, final_parameters, tiny_config

from genood import config as cfg
from genood.train import fit, read_metrics

STEPS = 64  # many steps between checkpoints: the poll below must catch one mid-way, even under load


def _train_command(config_path: Path, run: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genood",
        "train",
        "--config",
        str(config_path),
        "--out",
        str(run),
        "--no-progress",
    ]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_then_resume_equals_uninterrupted(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    config = tiny_config(tiny_data["train"], steps=STEPS, checkpoint_every=4, log_every=1)
    config_path = tmp_path / "tiny.toml"
    cfg.save(config, config_path)
    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    process = subprocess.Popen(_train_command(config_path, run), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    killed_at = -1
    try:
        while time.monotonic() < deadline and process.poll() is None:
            steps = [
                e["step"] for e in read_metrics(run / "metrics.jsonl") if e["event"] == "train"
            ]
            # past the first checkpoint and not at a checkpoint boundary: mid-way between two
            if steps and steps[-1] >= 6 and steps[-1] % 4 != 0:
                killed_at = steps[-1]
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        process.wait(timeout=60)
    assert killed_at > 0, f"the run ended before it could be killed: {process.stderr.read()!r}"
    assert process.returncode == -signal.SIGKILL
    assert not (run / "done.json").exists()
    assert (
        read_metrics(run / "metrics.jsonl")[-1]["step"] >= killed_at
    )  # logged past the checkpoint

    resumed = subprocess.run(
        _train_command(config_path, run), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    events = read_metrics(run / "metrics.jsonl")
    resume = [e for e in events if e["event"] == "resume"]
    assert len(resume) == 1 and resume[0]["step"] % 4 == 0 and resume[0]["step"] < killed_at
    # the metrics logged after the checkpoint by the killed process were dropped, not duplicated
    train_steps = [e["step"] for e in events if e["event"] == "train"]
    assert train_steps == list(range(1, STEPS + 1))

    fit(config, tmp_path / "straight", progress=False)
    assert_bitwise_equal(final_parameters(tmp_path / "straight"), final_parameters(run))
