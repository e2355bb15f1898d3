"""KL warm-up and free nats: the schedules, and the floor split over a layer's channels."""

from __future__ import annotations

import pytest
import torch

from genood.models.kl_schedule import floored_kl, free_nats_at, warmup_weight


def test_warmup_rises_linearly_then_stays_at_one() -> None:
    assert [warmup_weight(t, 4) for t in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert warmup_weight(0, 0) == 1.0
    with pytest.raises(ValueError, match=">= 0"):
        warmup_weight(1, -1)


def test_free_nats_hold_then_anneal_to_zero() -> None:
    values = [free_nats_at(t, 2.0, constant_steps=4, anneal_steps=4) for t in range(10)]
    assert values == [2.0, 2.0, 2.0, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0, 0.0]
    assert free_nats_at(3, 2.0, constant_steps=2, anneal_steps=0) == 0.0
    assert free_nats_at(100, 2.0, constant_steps=0, anneal_steps=0) == 2.0  # never annealed
    with pytest.raises(ValueError, match="must be >= 0"):
        free_nats_at(0, -1.0, 1, 1)


def test_floor_is_split_over_channels_and_applies_per_element() -> None:
    conv = torch.zeros(3, 8, 14, 14)  # the authors' z_1: 2 / 8 nats per element
    torch.testing.assert_close(floored_kl(conv, 2.0), torch.full((3,), 0.25 * 8 * 14 * 14))
    dense = torch.zeros(3, 16)
    torch.testing.assert_close(floored_kl(dense, 2.0), torch.full((3,), 2.0))
    above = torch.full((2, 4), 5.0)  # above the floor: the KL itself
    torch.testing.assert_close(floored_kl(above, 2.0), above.sum(dim=1))
    torch.testing.assert_close(floored_kl(above, 0.0), above.sum(dim=1))
