"""``genood.io``: atomic writes leave whole files with the umask's mode (issue 16, defect 5)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from genood.data.cache import atomic_save_npy, atomic_write_text
from genood.io import atomic_path, plain_file_mode, save_npy_atomic, write_text_atomic
from genood.train.checkpoint import save_atomic
from genood.train.checkpoint import write_text_atomic as checkpoint_write_text


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_atomic_writer_honours_the_umask(tmp_path: Path, umask: int) -> None:
    expected = 0o666 & ~umask
    assert plain_file_mode() == expected
    write_text_atomic(tmp_path / "a.txt", "a")
    checkpoint_write_text(tmp_path / "config.toml", "x = 1\n")
    save_atomic({"format": "genood-checkpoint", "version": 1}, tmp_path / "ck" / "last.pt")
    save_npy_atomic(tmp_path / "b.npy", np.arange(3))
    atomic_save_npy(tmp_path / "c.npy", np.arange(3))
    atomic_write_text(tmp_path / "c.json", "{}")
    plain = tmp_path / "plain.txt"
    plain.write_text("p")  # what open() gives: the reference
    for name in ("a.txt", "config.toml", "ck/last.pt", "b.npy", "c.npy", "c.json"):
        assert mode(tmp_path / name) == expected == mode(plain), name
    assert (tmp_path / "a.txt").read_text() == "a"
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.arange(3))
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["version"] == 1


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_the_umask_is_left_as_it_was(tmp_path: Path, umask: int) -> None:
    write_text_atomic(tmp_path / "a.txt", "a")
    assert os.umask(umask) == umask


def test_the_umask_without_proc(monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    import genood.io as genood_io

    def no_proc(*args: object, **kwargs: object) -> None:
        raise OSError("no /proc here")

    monkeypatch.setattr(genood_io, "open", no_proc, raising=False)
    assert genood_io.current_umask() == umask
    assert os.umask(umask) == umask  # and it is left as it was
