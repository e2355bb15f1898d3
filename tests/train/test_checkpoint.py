"""Atomic checkpoint writes, safe loads and RNG round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from genood.train import checkpoint as ckpt


def _state(value: float) -> dict:
    return {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "x": torch.full((3,), value),
        "note": None,
    }


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "last.pt"
    ckpt.save_atomic(_state(1.0), path)
    loaded = ckpt.load(path)
    assert torch.equal(loaded["x"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left


def test_a_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    ckpt.save_atomic(_state(1.0), path)

    def torn_save(obj: object, f: object) -> None:
        f.write(b"half a checkpoint")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_atomic(_state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load(path)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class Payload:
    """Anything that is not a tensor or plain value."""

    def __reduce__(self) -> tuple:
        return (print, ("this must never run",))


def test_load_never_unpickles_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "version": 1, "payload": Payload()}, path)
    with pytest.raises(ValueError, match="not a readable genood checkpoint"):
        ckpt.load(path)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a genood checkpoint"):
        ckpt.load(path)
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(ValueError, match="not a readable"):
        ckpt.load(tmp_path / "torn.pt")
    with pytest.raises(FileNotFoundError):
        ckpt.load(tmp_path / "missing.pt")


def test_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1}, path)
    with pytest.raises(ValueError, match="newer genood"):
        ckpt.load(path)


def test_rng_states_round_trip_through_a_safe_load(tmp_path: Path) -> None:
    random.random()
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    state = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    ckpt.save_atomic({"format": ckpt.FORMAT, "version": 1, "rng": state}, tmp_path / "rng.pt")
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    ckpt.restore_rng(ckpt.load(tmp_path / "rng.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_write_text_atomic(tmp_path: Path) -> None:
    ckpt.write_text_atomic(tmp_path / "a" / "f.txt", "hello\n")
    assert (tmp_path / "a" / "f.txt").read_text() == "hello\n"
