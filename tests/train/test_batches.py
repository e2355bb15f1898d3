"""The training stream: order and noise as functions of (seed, step), shards, mutation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genood.train.batches import TrainStream, derive_seed, mutate, shard_range

CPU = torch.device("cpu")


def _images(n: int = 10) -> np.ndarray:
    return np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(4, axis=2).repeat(4, axis=3)


def test_each_epoch_visits_every_image_once() -> None:
    stream = TrainStream(_images(10), batch_size=4, seed=0, device=CPU)
    # 5 steps of 4 = 20 positions = exactly two epochs, batches may straddle epochs
    seen = torch.cat([stream.indices(step) for step in range(5)])
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    assert not torch.equal(seen[:10], seen[10:])  # a new permutation per epoch


def test_batches_depend_only_on_seed_and_step() -> None:
    a = TrainStream(_images(), batch_size=3, seed=7, device=CPU)
    b = TrainStream(_images(), batch_size=3, seed=7, device=CPU)
    for step in (5, 0, 3):  # any order: nothing is stateful
        assert torch.equal(a.batch(step), b.batch(step))
        noise_a = torch.rand(4, generator=a.generator(step))
        noise_b = torch.rand(4, generator=b.generator(step))
        assert torch.equal(noise_a, noise_b)
    c = TrainStream(_images(), batch_size=3, seed=8, device=CPU)
    assert not all(torch.equal(a.indices(s), c.indices(s)) for s in range(4))


def test_batch_larger_than_the_data_set() -> None:
    stream = TrainStream(_images(3), batch_size=7, seed=0, device=CPU)
    assert stream.batch(0).shape == (7, 1, 4, 4)
    assert stream.epoch_of(3) == 7.0


def test_shards_partition_the_batch() -> None:
    for total, world in ((8, 2), (10, 3), (2, 4)):
        ranges = [shard_range(total, r, world) for r in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_stream_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match="uint8"):
        TrainStream(np.zeros((2, 1, 4, 4), np.float32), 2, 0, CPU)
    with pytest.raises(ValueError, match="empty"):
        TrainStream(np.zeros((0, 1, 4, 4), np.uint8), 2, 0, CPU)
    with pytest.raises(ValueError, match="batch_size"):
        TrainStream(_images(), 0, 0, CPU)


def test_mutation_replaces_the_stated_fraction() -> None:
    images = torch.zeros(200, 3, 8, 8, dtype=torch.uint8)
    mutated = mutate(images, 0.2, torch.Generator().manual_seed(0))
    changed = (mutated != 0).float().mean().item()
    # a replaced value is uniform on 0..255, so it is 0 again with probability 1/256
    assert changed == pytest.approx(0.2 * 255 / 256, abs=0.01)
    assert mutated.dtype == torch.uint8
    assert mutate(images, 0.0, torch.Generator()) is images
    with pytest.raises(ValueError, match="mutation_rate"):
        mutate(images, 1.5, torch.Generator())


def test_derived_seeds_differ() -> None:
    seeds = {derive_seed(0, stream, index) for stream in range(3) for index in range(50)}
    assert len(seeds) == 150
    assert all(0 <= s < 2**63 for s in seeds)
