"""Learning-rate warm-up, optimiser choice and gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch

from genood.config import TrainConfig
from genood.train.optim import WarmupSchedule, build_optimizer, clip_gradients


def test_warmup_is_linear_then_constant() -> None:
    schedule = WarmupSchedule(peak=1e-3, warmup_steps=4)
    assert [schedule.lr(s) for s in range(6)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]
    )
    assert WarmupSchedule(1e-3, 0).lr(0) == 1e-3


def test_schedule_sets_every_group() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam(
        [{"params": [param]}, {"params": [torch.nn.Parameter(torch.zeros(1))]}]
    )
    WarmupSchedule(2e-3, 2).apply(optimizer, 0)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-3]


@pytest.mark.parametrize(
    ("name", "kind"), [("adamax", torch.optim.Adamax), ("Adam", torch.optim.Adam)]
)
def test_build_optimizer(name: str, kind: type) -> None:
    config = TrainConfig(optimizer=name, lr=5e-4, weight_decay=1e-5)
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(3))], config, torch.device("cpu"))
    assert isinstance(optimizer, kind)
    assert optimizer.param_groups[0]["weight_decay"] == 1e-5
    assert not optimizer.param_groups[0]["capturable"]  # on-device step counters only on CUDA


def test_build_optimizer_rejects_unknown_and_bad_lr() -> None:
    with pytest.raises(ValueError, match="adamax, adam"):
        build_optimizer(
            [torch.nn.Parameter(torch.zeros(1))], TrainConfig(optimizer="sgd"), torch.device("cpu")
        )
    with pytest.raises(ValueError, match="positive"):
        build_optimizer(
            [torch.nn.Parameter(torch.zeros(1))], TrainConfig(lr=-1.0), torch.device("cpu")
        )


def test_clip_gradients_clips_the_global_norm() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    norm = clip_gradients([a, b], max_norm=1.0)
    assert float(norm) == pytest.approx(5.0)
    total = torch.cat([a.grad, b.grad]).norm()
    assert float(total) == pytest.approx(1.0, rel=1e-5)


def test_no_clipping_leaves_gradients_and_reports_nan() -> None:
    a = torch.nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([3.0, 4.0])
    assert float(clip_gradients([a], max_norm=0.0)) == pytest.approx(5.0)
    assert torch.equal(a.grad, torch.tensor([3.0, 4.0]))
    a.grad = torch.tensor([float("nan"), 1.0])
    assert math.isnan(float(clip_gradients([a], max_norm=1.0)))
