"""``train.jacobian_penalty``: off is bitwise the old training; on, it trains, logs R, resumes
exactly, is guarded against non-finite steps, runs in bf16 and under DDP, and refuses what it
cannot do with an error that names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import assert_bitwise_equal, final_parameters, tiny_config

import genood.train.jacobian as jacobian
from genood import config as cfg
from genood.train import fit, read_metrics
from genood.train.jacobian import METRIC, check_penalty_config

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("ddp_driver.py")


def _train_records(run: Path) -> list[dict]:
    return [e for e in read_metrics(run / "metrics.jsonl") if e["event"] == "train"]


def test_zero_penalty_is_bitwise_the_unpenalised_training(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    plain = tiny_config(tiny_data["train"], steps=4)
    assert plain.train.jacobian_penalty == 0.0  # the default: off
    off = tiny_config(tiny_data["train"], steps=4, jacobian_penalty=0.0, jacobian_samples=3)
    fit(plain, tmp_path / "plain", progress=False)
    fit(off, tmp_path / "off", progress=False)
    assert_bitwise_equal(final_parameters(tmp_path / "plain"), final_parameters(tmp_path / "off"))
    assert all(METRIC not in e for e in _train_records(tmp_path / "off"))
    on = tiny_config(tiny_data["train"], steps=4, jacobian_penalty=0.05)
    fit(on, tmp_path / "on", progress=False)
    changed = final_parameters(tmp_path / "on")
    assert any(
        not torch.equal(changed[k], v) for k, v in final_parameters(tmp_path / "plain").items()
    )


def test_penalised_run_logs_r_and_resumes_exactly(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    def config(steps: int) -> cfg.RunConfig:
        return tiny_config(
            tiny_data["train"], steps=steps, jacobian_penalty=0.01, jacobian_samples=2
        )

    straight = fit(config(8), tmp_path / "straight", progress=False)
    fit(config(4), tmp_path / "split", progress=False)
    resumed = fit(config(8), tmp_path / "split", progress=False)
    assert resumed["step"] == 8
    assert_bitwise_equal(
        final_parameters(tmp_path / "straight"), final_parameters(tmp_path / "split")
    )
    assert resumed[METRIC] == straight[METRIC]
    records = _train_records(tmp_path / "straight")
    values = [e[METRIC] for e in records]
    assert len(values) == 4 and all(v > 0 and v == v for v in values)
    # loss_bpd stays the bits/dim alone: about what an unpenalised model scores at this point
    assert all(3.0 < e["loss_bpd"] < 12.0 for e in records)


def test_penalty_changes_the_resume_identity(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    fit(tiny_config(tiny_data["train"], steps=2), tmp_path / "run", progress=False)
    other = tiny_config(tiny_data["train"], steps=4, jacobian_penalty=0.01)
    with pytest.raises(ValueError, match=r"train\.jacobian_penalty.*--no-resume"):
        fit(other, tmp_path / "run", progress=False)


def test_nonfinite_penalty_is_skipped_by_the_guard(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = jacobian.vjp_squared_norms
    calls = {"n": 0}

    def poisoned(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        value = original(*args, **kwargs)  # type: ignore[arg-type]
        return value * float("nan") if calls["n"] == 2 else value

    monkeypatch.setattr(jacobian, "vjp_squared_norms", poisoned)
    config = tiny_config(tiny_data["train"], steps=4, jacobian_penalty=0.01)
    result = fit(config, tmp_path / "run", progress=False)
    assert result["nonfinite_skipped"] == 1 and result["step"] == 4
    events = read_metrics(tmp_path / "run" / "metrics.jsonl")
    skipped = [e["step"] for e in events if e["event"] == "nonfinite"]
    assert skipped == [1]  # one process: the n-th call is step n - 1 (the init pass has none)
    assert all(torch.isfinite(v).all() for v in final_parameters(tmp_path / "run").values())


def test_bf16_autocast_trains_with_the_penalty(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    config = tiny_config(tiny_data["train"], steps=2, jacobian_penalty=0.01, precision="bf16")
    result = fit(config, tmp_path / "run", progress=False)
    assert result["step"] == 2 and result[METRIC] > 0
    assert all(torch.isfinite(v).all() for v in final_parameters(tmp_path / "run").values())


def test_unsupported_settings_name_the_fix(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    train = cfg.TrainConfig(jacobian_penalty=0.1)
    with pytest.raises(ValueError, match="precision to bf16 or fp32"):
        check_penalty_config(train, "fp16")
    with pytest.raises(ValueError, match="train.compile = false"):
        check_penalty_config(cfg.TrainConfig(jacobian_penalty=0.1, compile=True), "fp32")
    with pytest.raises(ValueError, match="jacobian_samples must be at least 1"):
        tiny_config(tiny_data["train"], jacobian_penalty=0.1, jacobian_samples=0)
    with pytest.raises(ValueError, match="jacobian_penalty must be >= 0"):
        tiny_config(tiny_data["train"], jacobian_penalty=-1.0)
    vae = tiny_config(tiny_data["train"], steps=1, jacobian_penalty=0.1)
    vae.model.name = "vae"
    vae.model.hparams = {"latent_dim": 2, "hidden": 4, "downsamples": 1}
    with pytest.raises(TypeError, match=r"needs a normalising flow.*jacobian_penalty = 0"):
        fit(vae, tmp_path / "vae", progress=False)


@pytest.mark.slow
def test_two_gloo_processes_train_with_the_penalty(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    """Under DDP the penalty runs inside the wrapped forward; ranks draw their own probes, so the
    run is not compared with one process step for step: it must finish, log R reduced over the
    ranks, and continue in one process from its checkpoint."""
    config = tiny_config(
        tiny_data["train"], tiny_data["test"], steps=4, checkpoint_every=2, jacobian_penalty=0.01
    )
    config_path = tmp_path / "tiny.toml"
    cfg.save(config, config_path)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    result = subprocess.run(
        [*command, "2", str(DRIVER), str(config_path), str(run), tiny_data["test"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    events = read_metrics(run / "metrics.jsonl")
    assert next(e for e in events if e["event"] == "start")["world_size"] == 2
    values = [e[METRIC] for e in events if e["event"] == "train"]
    assert len(values) == 2 and all(v > 0 for v in values)
    config.train.steps = 6
    resumed = fit(config, run, progress=False)
    assert resumed["step"] == 6 and resumed[METRIC] > 0
