"""Shared fixtures: the real-data folder (when present), RNG seeding, thread count."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests run several processes on a 2-core machine: one thread each keeps them from fighting.
torch.set_num_threads(int(os.environ.get("GENOOD_TEST_THREADS", "1")))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` with the real FashionMNIST and mnist-10k files; skip when absent."""
    if not (SHARED_DATA / "fashion-mnist").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test read or write the user's real cache or data folder."""
    monkeypatch.setenv("GENOOD_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("GENOOD_DATA", raising=False)
