"""``load``/``fetch``/``list_datasets``: sources in order, cache, limits, errors, atomic writes."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
from data_builders import digits, make_npm_tgz, trust, write_mnist_like

import genood.data.cache as cache
import genood.data.sources as sources
from genood.data import DataNotFoundError, fetch, list_datasets, load, parse_spec
from genood.data.cache import CacheEntry, array_sha256, downloads_dir
from genood.data.catalog import FASHION_MNIST, MNIST, MNIST_10K, interleave_classes
from genood.data.formats import idx


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("cifar10:test", ("cifar10", "test")),
        ("mnist", ("mnist", None)),
        ("npz:/a/b:c.npz", ("npz", "/a/b:c.npz")),
        ("imagefolder:rel/dir", ("imagefolder", "rel/dir")),
    ],
)
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", "a:b:c", "mnist:", "npz:"])
def test_bad_specs(spec):
    with pytest.raises(ValueError):
        parse_spec(spec)


def test_unknown_name_and_split():
    with pytest.raises(
        ValueError, match=r"unknown data set 'nope'; known: fashion-mnist, mnist, mnist-10k"
    ):
        load("nope")
    with pytest.raises(
        ValueError, match=r"fashion-mnist has no split 'valid'; its splits are train, test"
    ):
        load("fashion-mnist:valid")
    with pytest.raises(ValueError, match=r"mnist-10k has no split 'test'; its splits are all"):
        load("mnist-10k:test")


@pytest.mark.parametrize("nested", [True, False])
def test_data_dir_direct_or_subfolder_then_cache(tmp_path, monkeypatch, nested):
    folder = tmp_path / "fashion-mnist" if nested else tmp_path
    arrays = write_mnist_like(folder)
    trust(monkeypatch, FASHION_MNIST, folder, train=30, test=20)
    data = load("fashion-mnist:train", data_dir=tmp_path, progress=False)
    assert data.spec == "fashion-mnist:train" and data.shape == (1, 28, 28)
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    assert np.array_equal(data.images[:, 0], arrays["train"][0])
    assert data.classes[9] == "Ankle boot"
    assert CacheEntry("fashion-mnist", "train").exists()
    # Second load: served from the cache without decoding again (even with the data dir).
    monkeypatch.setattr(idx, "read_idx_images_labels", lambda *a: pytest.fail("decoded again"))
    again = load("fashion-mnist:train", data_dir=tmp_path, progress=False)
    assert np.array_equal(again.images, data.images)
    assert load("fashion-mnist:train", progress=False).source.startswith("cache")


def test_same_official_files_elsewhere_reuse_the_cache(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "a")
    trust(monkeypatch, MNIST, tmp_path / "a", train=30, test=20)
    load("mnist:test", data_dir=tmp_path / "a", progress=False)
    (tmp_path / "a").rename(tmp_path / "b")
    monkeypatch.setattr(idx, "read_idx_images_labels", lambda *a: pytest.fail("decoded again"))
    assert len(load("mnist:test", data_dir=tmp_path / "b", progress=False)) == 20
    recorded = CacheEntry("mnist", "test").meta()["raw"]["t10k-images-idx3-ubyte.gz"]["path"]
    assert recorded.startswith(str(tmp_path / "b"))


def test_genood_data_env_and_default_split(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "mnist")
    trust(monkeypatch, MNIST, tmp_path / "mnist", train=30, test=20)
    monkeypatch.setenv("GENOOD_DATA", str(tmp_path))
    data = load("mnist", progress=False)
    assert data.spec == "mnist:test" and len(data) == 20 and data.source.startswith("GENOOD_DATA")


def test_limit_takes_the_first_images(tmp_path, monkeypatch):
    arrays = write_mnist_like(tmp_path)
    trust(monkeypatch, MNIST, tmp_path, train=30, test=20)
    first = load("mnist:test", data_dir=tmp_path, limit=7, progress=False)
    cached = load("mnist:test", limit=7, progress=False)
    for data in (first, cached):
        assert len(data) == 7 and np.array_equal(data.images[:, 0], arrays["test"][0][:7])
        assert data.images.flags.writeable
    assert len(load("mnist:test", limit=0, progress=False)) == 0
    with pytest.raises(ValueError, match="limit must be >= 0"):
        load("mnist:test", limit=-1)


def test_checksum_mismatch_leaves_no_cache_and_lists_sources(tmp_path, monkeypatch):
    write_mnist_like(tmp_path)
    monkeypatch.setitem(MNIST.counts, "test", 20)
    with pytest.raises(DataNotFoundError) as caught, pytest.warns(UserWarning):
        load("mnist:test", data_dir=tmp_path, progress=False)
    message = str(caught.value)
    assert (
        "t10k-images-idx3-ubyte.gz: sha256" in message
        and "differs from the published 8d422c7b" in message
    )
    assert "  2. cache" in message and "yann.lecun.com" in message and "ossci-datasets" in message
    assert "fetch with: genood data fetch mnist" in message
    assert not CacheEntry("mnist", "test").exists()


def test_wrong_count_is_refused(tmp_path, monkeypatch):
    write_mnist_like(tmp_path)
    trust(monkeypatch, MNIST, tmp_path)  # counts stay the published 60,000 / 10,000
    with (
        pytest.raises(
            DataNotFoundError, match=r"mnist:test should hold 10000 images, the files hold 20"
        ),
        pytest.warns(UserWarning),
    ):
        load("mnist:test", data_dir=tmp_path, progress=False)


def test_download_from_file_url_verified_and_cached(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_mnist_like(mirror)
    trust(monkeypatch, MNIST, mirror, train=30, test=20)
    monkeypatch.setattr(sources, "urlopen", urllib.request.urlopen)  # file:// only
    for name in MNIST.urls:
        bad, good = (tmp_path / "missing" / name).as_uri(), (mirror / name).as_uri()
        monkeypatch.setitem(MNIST.urls, name, (bad, good))  # the first URL fails, the next works
    data = load("mnist:test", progress=False)
    assert len(data) == 20 and data.source == "download from the official location"
    assert (downloads_dir("mnist") / "t10k-images-idx3-ubyte.gz").is_file()
    assert not list(downloads_dir("mnist").glob(".*part"))


def test_corrupt_download_is_discarded_and_reported(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_mnist_like(mirror)
    monkeypatch.setattr(sources, "urlopen", urllib.request.urlopen)
    for name in MNIST.urls:
        monkeypatch.setitem(MNIST.urls, name, ((mirror / name).as_uri(),))
    with pytest.raises(
        DataNotFoundError, match=r"t10k-images-idx3-ubyte.gz: sha256 .* differs from the published"
    ):
        load("mnist:test", progress=False)
    assert not downloads_dir("mnist").exists()  # nothing half-written or unverified kept


def test_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    write_mnist_like(tmp_path)
    trust(monkeypatch, MNIST, tmp_path, train=30, test=20)

    def fail_after_writing(*args, **kwargs):
        args[0].write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache.np, "save", fail_after_writing)
    with pytest.raises(DataNotFoundError, match="disk full"), pytest.warns(UserWarning):
        load("mnist:test", data_dir=tmp_path, progress=False)
    entry = CacheEntry("mnist", "test")
    assert not entry.exists() and not list(entry.folder.glob("*.part"))


def test_tampered_cache_entry_is_not_served(tmp_path, monkeypatch):
    write_mnist_like(tmp_path)
    trust(monkeypatch, MNIST, tmp_path, train=30, test=20)
    load("mnist:test", data_dir=tmp_path, progress=False)
    entry = CacheEntry("mnist", "test")
    np.save(entry.images_path, np.zeros((3, 1, 28, 28), np.uint8))
    with pytest.raises(DataNotFoundError, match=r"cache entry .* does not match"):
        load("mnist:test", progress=False)


def test_mnist_10k_npm_tarball_in_data_dir(tmp_path, monkeypatch):
    images, labels = digits(50, seed=5)
    make_npm_tgz(tmp_path / "mnist-1.1.0.tgz", images, labels)
    order = np.argsort(labels, kind="stable")
    pinned = (array_sha256(images[order][:, None]), array_sha256(labels[order]))
    monkeypatch.setitem(MNIST_10K.array_sha256, "all", pinned)
    monkeypatch.setitem(MNIST_10K.counts, "all", 50)
    data = load("mnist-10k", data_dir=tmp_path, progress=False)
    assert data.spec == "mnist-10k:all" and len(data) == 50
    assert list(data.labels[:10]) == list(range(10))  # interleaved: a limit is class-balanced
    monkeypatch.setitem(MNIST_10K.array_sha256, "all", ("0" * 64, "0" * 64))
    CacheEntry("mnist-10k", "all").meta_path.unlink()
    with (
        pytest.raises(
            DataNotFoundError, match="decoded mnist-10k:all arrays differ from the pinned"
        ),
        pytest.warns(UserWarning),
    ):
        load("mnist-10k", data_dir=tmp_path, progress=False)


def test_interleave_classes():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert list(labels[interleave_classes(labels)]) == [0, 1, 2, 0, 1, 0]


def test_fetch_and_list(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "fashion-mnist")
    trust(monkeypatch, FASHION_MNIST, tmp_path / "fashion-mnist", train=30, test=20)
    paths = fetch("fashion-mnist", data_dir=tmp_path, progress=False)
    assert {p.name for p in paths} >= {"train-images.npy", "test-labels.npy", "test.json"}
    assert all(p.is_file() for p in paths)
    rows = {row["name"]: row for row in list_datasets(tmp_path)}
    assert rows["fashion-mnist"]["cached"] and rows["fashion-mnist"]["size_bytes"] > 30 * 784
    assert rows["fashion-mnist"]["in_data_dir"] == ["train", "test"]
    assert not rows["mnist"]["cached"] and rows["mnist"]["size_bytes"] == 0
    assert rows["svhn"]["splits"] == ["train", "test", "extra"] and rows["cifar10"]["shape"] == (
        3,
        32,
        32,
    )
