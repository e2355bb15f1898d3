"""DDP on 2 CPU processes (gloo, launched with torchrun) equals one process with the same batch.

Stated tolerance: parameters within 1e-5 (absolute) of the single-process run after the same
steps in fp32. The only difference is the order of floating-point summation in the gradient
all-reduce; in practice the two agree to about 1e-7.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import final_parameters, tiny_config

from genood import config as cfg
from genood.train import fit, load_run, read_metrics, score_dataset
from genood.train.distributed import DistContext, init_distributed, launched_by_torchrun

TOLERANCE = 1e-5
DRIVER = Path(__file__).with_name("ddp_driver.py")


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(
            a[name].double(), b[name].double(), atol=TOLERANCE, rtol=0, msg=name
        )


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    # 4 steps on 2 ranks (4 images each), then 4 more in one process from the DDP checkpoint
    config = tiny_config(tiny_data["train"], tiny_data["test"], steps=4, checkpoint_every=2)
    config_path = tmp_path / "tiny.toml"
    cfg.save(config, config_path)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    result = subprocess.run(
        [*command, str(DRIVER), str(config_path), str(run), tiny_data["test"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "N = 16" in result.stdout  # the score summary, printed once (rank 0)
    assert result.stdout.count("bits/dim ") == 1

    straight4 = fit(config, tmp_path / "straight4", progress=False)
    _close(final_parameters(run), final_parameters(tmp_path / "straight4"))
    ddp_events = read_metrics(run / "metrics.jsonl")
    one_events = read_metrics(tmp_path / "straight4" / "metrics.jsonl")
    start = next(e for e in ddp_events if e["event"] == "start")
    assert start["world_size"] == 2
    for a, b in zip(
        [e for e in ddp_events if e["event"] in ("train", "eval")],
        [e for e in one_events if e["event"] in ("train", "eval")],
    ):  # metrics reduced across ranks equal the single-process ones
        assert a["step"] == b["step"]
        for key in ("loss_bpd", "eval_bpd"):
            if key in a:
                assert a[key] == pytest.approx(b[key], abs=1e-5)
    assert straight4["eval_bpd"] == pytest.approx(
        next(e for e in ddp_events if e["event"] == "eval")["eval_bpd"], abs=1e-5
    )

    # scoring split across the two ranks and gathered equals scoring in one process, up to
    # float32 rounding (other batch sizes: 5 per forward there, 256 here)
    split_scores = dict(np.load(run / "scores" / "npz-test.npz"))
    one = score_dataset(load_run(run), tiny_data["test"], save=False, progress=False)
    np.testing.assert_array_equal(split_scores["labels"], one["labels"])
    for key in ("bits_per_dim", "log_pz", "logdet"):
        np.testing.assert_allclose(split_scores[key], one[key], rtol=1e-6)

    # resume the 2-process checkpoint in one process (another world size)
    longer = tiny_config(tiny_data["train"], tiny_data["test"], steps=8, checkpoint_every=2)
    fit(longer, run, progress=False)
    fit(longer, tmp_path / "straight8", progress=False)
    _close(final_parameters(run), final_parameters(tmp_path / "straight8"))


def test_not_distributed_without_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_torchrun()
    context = init_distributed(False, "cpu")
    assert context == DistContext() and not context.enabled and context.is_main
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        init_distributed(True, "cpu")


def test_batch_must_split_evenly(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    from genood.train.loop import Trainer

    with pytest.raises(
        ValueError, match=r"batch_size \(9\) must be divisible by the number of processes \(2\)"
    ):
        Trainer(
            tiny_config(tiny_data["train"], batch_size=9),
            torch.nn.Module(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            DistContext(rank=0, world_size=2),
            torch.device("cpu"),
            None,  # type: ignore[arg-type]
        )
