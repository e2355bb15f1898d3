"""The non-finite guard: skip and count, restore exactly, stop after N in a row."""

from __future__ import annotations

import pytest
import torch

from genood.train.nonfinite import NonFiniteError, NonFiniteGuard, masked_step


def _problem(seed: int = 0) -> tuple[torch.nn.Linear, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    layer = torch.nn.Linear(4, 3)
    return layer, torch.optim.Adamax(layer.parameters(), lr=1e-2)


def _run(
    sync: bool, poisoned: set[int], steps: int = 8, max_in_a_row: int = 5
) -> tuple[torch.nn.Linear, NonFiniteGuard]:
    layer, optimizer = _problem()
    guard = NonFiniteGuard(max_in_a_row, torch.device("cpu"), sync=sync)
    data = torch.randn(steps, 16, 4, generator=torch.Generator().manual_seed(1))
    for step in range(steps):
        optimizer.zero_grad()
        loss = layer(data[step]).pow(2).mean()
        if step in poisoned:
            loss = loss * float("nan")
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(layer.parameters(), 10.0)
        guard.step(optimizer, loss, grad_norm, step)
    return layer, guard


def test_nan_step_is_skipped_and_counted() -> None:
    clean, _ = _run(sync=True, poisoned=set(), steps=3)
    poisoned, guard = _run(sync=True, poisoned={1}, steps=3)
    assert guard.skipped == 1
    assert guard.in_a_row == 0
    assert all(torch.isfinite(p).all() for p in poisoned.parameters())
    # skipping step 1 means the model differs from the clean run, but only by that step
    assert not torch.equal(clean.weight, poisoned.weight)


def test_skipped_step_changes_nothing() -> None:
    layer, optimizer = _problem()
    guard = NonFiniteGuard(3, torch.device("cpu"), sync=True)
    layer(torch.randn(2, 4)).sum().backward()
    optimizer.step()  # create optimiser state
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    state_before = {k: v.clone() for k, v in optimizer.state[layer.weight].items()}
    optimizer.zero_grad()
    loss = layer(torch.randn(2, 4)).sum() * float("inf")
    loss.backward()
    ok = guard.step(optimizer, loss, torch.nn.utils.clip_grad_norm_(layer.parameters(), 1.0), 1)
    assert not bool(ok)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, before[key])
    for key, value in optimizer.state[layer.weight].items():
        assert torch.equal(value, state_before[key])


def test_on_device_mode_matches_sync_mode_bitwise() -> None:
    poisoned = {2, 3, 6}
    synced, sync_guard = _run(sync=True, poisoned=poisoned)
    masked, masked_guard = _run(sync=False, poisoned=poisoned)
    assert sync_guard.skipped == masked_guard.skipped == 3
    for a, b in zip(synced.parameters(), masked.parameters()):
        assert torch.equal(a, b)


def test_masked_step_takes_a_finite_step_exactly() -> None:
    reference, ref_opt = _problem()
    masked, masked_opt = _problem()
    x = torch.randn(5, 4)
    for layer, optimizer in ((reference, ref_opt), (masked, masked_opt)):
        for _ in range(2):
            optimizer.zero_grad()
            layer(x).pow(2).sum().backward()
            if optimizer is ref_opt or not optimizer.state:
                optimizer.step()
            else:
                masked_step(optimizer, torch.tensor(True))
    assert torch.equal(reference.weight, masked.weight)


@pytest.mark.parametrize("sync", [True, False])
def test_too_many_in_a_row_raise_the_documented_error(sync: bool) -> None:
    poisoned = set(range(1, 8))
    if sync:
        with pytest.raises(
            NonFiniteError, match=r"4 optimiser steps in a row.*lower train\.lr.*warmup_steps.*fp32"
        ):
            _run(sync=True, poisoned=poisoned, max_in_a_row=4)
    else:
        _, guard = _run(sync=False, poisoned=poisoned, max_in_a_row=4)  # never reads on device
        assert guard.skipped == 7
        with pytest.raises(NonFiniteError, match="7 optimiser steps in a row"):
            guard.check(step=8)


def test_streak_resets_after_a_finite_step() -> None:
    _, guard = _run(sync=True, poisoned={1, 2, 4, 5}, max_in_a_row=3)
    assert guard.skipped == 4
    assert guard.state_dict() == {"skipped": 4, "in_a_row": 0, "worst": 2}


def test_zero_disables_the_stop() -> None:
    _, guard = _run(sync=True, poisoned=set(range(8)), max_in_a_row=0)
    assert guard.skipped == 8


def test_reduce_min_makes_ranks_agree() -> None:
    calls = []

    def reduce_min(flag: torch.Tensor) -> None:
        calls.append(int(flag))
        flag.fill_(0)  # another rank saw a non-finite loss

    guard = NonFiniteGuard(5, torch.device("cpu"), sync=True, reduce_min=reduce_min)
    ok = guard.finite(torch.tensor(1.0), torch.tensor(2.0))
    assert calls == [1]
    assert not bool(ok)


def test_state_dict_round_trip() -> None:
    guard = NonFiniteGuard(5, torch.device("cpu"), sync=True)
    guard.load_state_dict({"skipped": 7, "in_a_row": 2, "worst": 3})
    assert guard.state_dict() == {"skipped": 7, "in_a_row": 2, "worst": 3}
