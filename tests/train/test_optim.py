"""Learning-rate warm-up, optimiser choice, the L2 penalty and gradient clipping."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from genood.config import TrainConfig
from genood.train.optim import (
    WarmupSchedule,
    apply_hyperparameters,
    build_optimizer,
    clip_gradients,
    l2_decay,
    l2_kernels,
)


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


def test_l2_decay_matches_the_penalty_in_nats_per_image() -> None:
    # l2 * sum(w^2) nats per image on a loss of nats / (D ln 2): gradient 2 * l2 / (D ln 2) * w
    weight = torch.nn.Parameter(torch.tensor([0.5, -2.0]))
    dimensions, l2 = 784, 10.0
    penalty = l2 * (weight**2).sum() / (dimensions * math.log(2.0))
    penalty.backward()
    assert weight.grad is not None
    decay = l2_decay(l2, dimensions)
    assert torch.allclose(weight.grad, decay * weight.detach())
    assert decay == pytest.approx(20.0 / (784 * math.log(2.0)))


def test_l2_falls_on_the_kernels_only_and_survives_a_reload() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Linear(2, 2))
    kernels = l2_kernels(model)
    assert [tuple(k.shape) for k in kernels] == [(2, 1, 3, 3), (2, 2)]
    config = TrainConfig(optimizer="adam", lr=1e-3, l2=10.0)
    params = list(model.parameters())
    optimizer = build_optimizer(params, config, torch.device("cpu"), kernels, dimensions=64)
    decays = {g["l2"]: g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {True: pytest.approx(l2_decay(10.0, 64)), False: 0.0}
    kernel_ids = {id(k) for k in kernels}
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == kernel_ids

    # A step with zero data gradient: only the penalty moves, and only the kernels.
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for p, old in zip(params, before, strict=True):
        if id(p) in kernel_ids:
            assert p.detach().abs().sum() < old.abs().sum()  # shrunk towards 0
        else:
            assert torch.equal(p.detach(), old)

    # A reloaded optimiser gets the (possibly changed) decays back per group.
    state = optimizer.state_dict()
    again = build_optimizer(params, config, torch.device("cpu"), kernels, dimensions=64)
    again.load_state_dict(state)
    changed = replace(config, l2=100.0, weight_decay=1e-6)
    apply_hyperparameters(again, changed, torch.device("cpu"), 64)
    assert again.param_groups[0]["weight_decay"] == pytest.approx(1e-6 + l2_decay(100.0, 64))
    assert again.param_groups[1]["weight_decay"] == 1e-6


def test_l2_needs_kernels() -> None:
    with pytest.raises(ValueError, match="train.l2=0"):
        build_optimizer(
            [torch.nn.Parameter(torch.zeros(1))], TrainConfig(l2=1.0), torch.device("cpu")
        )
