"""general-patches: crops of photographs from two Debian packages, through fake apt-get (offline).

The packages are real .deb files (``dpkg-deb --build``) holding small synthetic JPEG photographs
at the paths and names the real packages use; their sha256 replace the pinned ones for the test.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from data_builders import fake_client, make_deb, prepend_path, sha256

from genood.data import DataNotFoundError, load
from genood.data import general as general_module
from genood.data.errors import DataFormatError
from genood.data.formats.patches import crop_resized, pyramid, read_patches, sample_boxes
from genood.data.general import (
    GENERAL_PATCHES,
    GENERAL_PATCHES_RGB,
    MATE_FOLDER,
    PHOTOS,
    PLASMA_FOLDER,
    split_photos,
)

FOLDERS = {"mate-backgrounds": MATE_FOLDER, "plasma-workspace-wallpapers": PLASMA_FOLDER}


def photo_bytes(seed: int, width: int = 150, height: int = 100) -> bytes:
    """A JPEG 'photograph': smooth gradients plus texture, different for every seed."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(xx / rng.uniform(5, 30)) * np.cos(yy / rng.uniform(5, 30))
    rgb = np.stack([base + rng.normal(0, 20, base.shape) for _ in range(3)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_photo(path: Path, seed: int, width: int = 150, height: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(seed, width, height))
    return path


# ----------------------------------------------------------------------------- the cutting
def test_patches_are_seeded_shaped_and_dealt_round_robin(tmp_path):
    photos = [write_photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    images, labels = read_patches(photos, 10, 28, 1, seed=0, labels=[5, 6, 7])
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [5, 6, 7, 5, 6, 7, 5, 6, 7, 5]
    again, _ = read_patches(photos, 10, 28, 1, seed=0, labels=[5, 6, 7])
    other, _ = read_patches(photos, 10, 28, 1, seed=1, labels=[5, 6, 7])
    assert np.array_equal(images, again)
    assert not np.array_equal(images, other)
    assert images.std() > 1  # not blank: the crops hold the photographs' content
    colour, _ = read_patches(photos, 4, 32, 3, seed=0)
    assert colour.shape == (4, 3, 32, 32)


def test_a_photographs_crops_do_not_depend_on_the_others(tmp_path):
    photos = [write_photo(tmp_path / f"p{i}.jpg", i) for i in range(2)]
    both, _ = read_patches(photos, 6, 28, 1, seed=3)
    alone, _ = read_patches(photos[:1], 3, 28, 1, seed=3)
    assert np.array_equal(both[0::2], alone)


def test_boxes_span_scales_inside_the_photograph():
    boxes = sample_boxes(np.random.default_rng(0), 400, 300, 2000, 28)
    x, y, side = boxes.T
    assert side.min() >= 28 and side.max() <= 300
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + side <= 400 + 1e-9).all() and (y + side <= 300 + 1e-9).all()
    # log-uniform: about as many crops below the geometric mean of the range as above it
    middle = np.sqrt(28 * 300)
    assert 0.4 < (side < middle).mean() < 0.6


def test_pyramid_crop_matches_a_direct_resize():
    from PIL import Image

    yy, xx = np.mgrid[0:512, 0:512]
    array = (127 + 100 * np.sin(xx / 40.0) * np.cos(yy / 50.0)).astype(np.uint8)
    image = Image.fromarray(array)
    levels = pyramid(image, 4 * 28)
    assert len(levels) == 3  # 512, 256, 128: the last level still >= 112
    direct = np.asarray(image.resize((28, 28), Image.Resampling.LANCZOS), np.float64)
    through = np.asarray(crop_resized(levels, (0.0, 0.0, 512.0), 28), np.float64)
    assert np.abs(direct - through).mean() < 2.0


def test_bad_photographs_are_named(tmp_path):
    small = write_photo(tmp_path / "small.jpg", 0, 20, 20)
    with pytest.raises(DataFormatError, match="small.jpg"):
        read_patches([small], 2, 28, 1, seed=0)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match="broken.jpg"):
        read_patches([broken], 2, 28, 1, seed=0)
    with pytest.raises(ValueError, match="channels"):
        read_patches([small], 2, 28, 2, seed=0)


# ----------------------------------------------------------------------------- the data set
def test_the_pinned_pool():
    assert len(PHOTOS) == 24 and len({p.name for p in PHOTOS}) == 24
    test = split_photos("test")
    assert len(test) == 4
    assert {p.package for p in test} == set(FOLDERS)
    assert not {p.name for p in test} & {p.name for p in split_photos("train")}
    assert all(len(p.sha256) == 64 for p in PHOTOS)
    assert GENERAL_PATCHES.shape == (1, 28, 28) and GENERAL_PATCHES_RGB.shape == (3, 32, 32)
    assert GENERAL_PATCHES.counts == {"train": 60_000, "test": 10_000}


APT_SCRIPT = """
open(LOG, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["download"] and sys.argv[2] in DEBS:
    shutil.copy(DEBS[sys.argv[2]], os.path.basename(DEBS[sys.argv[2]]))
    sys.exit(0)
print("E: Unable to locate package " + sys.argv[-1], file=sys.stderr)
sys.exit(100)
"""


@pytest.fixture
def wallpaper_debs(tmp_path, monkeypatch):
    """Real .debs laid out like the two packages, holding small synthetic photographs; the
    data set's pins and counts are set to them for this test."""
    debs = {}
    for package, folder in FOLDERS.items():
        files = {
            f"{folder}/{p.name}": photo_bytes(index)
            for index, p in enumerate(PHOTOS)
            if p.package == package
        }
        files[f"usr/share/doc/{package}/copyright"] = b"synthetic"
        debs[package] = make_deb(tmp_path / f"{package}_0.0-1_all.deb", files)
        for index, p in enumerate(PHOTOS):
            if p.package == package:
                digest = sha256_bytes(photo_bytes(index))
                monkeypatch.setitem(GENERAL_PATCHES.sha256, p.name, digest)
    for split, count in (("train", 40), ("test", 12)):
        monkeypatch.setitem(general_module.COUNTS, split, count)
        monkeypatch.setitem(GENERAL_PATCHES.counts, split, count)
    bin_dir = tmp_path / "bin"
    log = bin_dir / "apt.log"
    bin_dir.mkdir()
    paths = {package: str(deb) for package, deb in debs.items()}
    fake_client(bin_dir, "apt-get", f"LOG, DEBS = {str(log)!r}, {paths!r}" + APT_SCRIPT)
    prepend_path(monkeypatch, bin_dir)
    return debs, log


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_built_from_both_packages_through_apt(wallpaper_debs):
    _, log = wallpaper_debs
    train = load("general-patches:train", progress=False)
    test = load("general-patches:val", progress=False)  # val is the test split
    assert train.images.shape == (40, 1, 28, 28) and test.images.shape == (12, 1, 28, 28)
    names = {index: p for index, p in enumerate(PHOTOS)}
    assert {names[int(label)].split for label in train.labels} == {"train"}
    assert {names[int(label)].split for label in test.labels} == {"test"}
    assert len(set(test.labels.tolist())) == 4
    assert log.read_text().split("\n")[:2] == [
        "download mate-backgrounds",
        "download plasma-workspace-wallpapers",
    ]
    again = load("general-patches:train", progress=False)  # from the cache now
    assert np.array_equal(again.images, train.images)
    assert again.source.startswith("cache")


def test_a_changed_photograph_is_refused(wallpaper_debs, monkeypatch):
    monkeypatch.setitem(GENERAL_PATCHES.sha256, PHOTOS[0].name, "0" * 64)
    with pytest.raises(DataNotFoundError) as error:
        load("general-patches:train", progress=False)
    assert "sha256" in str(error.value) and PHOTOS[0].name in str(error.value)


def test_photographs_put_by_hand_in_the_data_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "general-patches"
    for index, photo in enumerate(PHOTOS):
        path = write_photo(folder / photo.name, index)
        monkeypatch.setitem(GENERAL_PATCHES.sha256, photo.name, sha256(path))
    monkeypatch.setitem(general_module.COUNTS, "test", 8)
    monkeypatch.setitem(GENERAL_PATCHES.counts, "test", 8)
    good = (folder / PHOTOS[6].name).read_bytes()
    (folder / PHOTOS[6].name).write_bytes(photo_bytes(99))
    with pytest.warns(UserWarning, match="sha256"), pytest.raises(DataNotFoundError):
        load("general-patches:test", data_dir=tmp_path / "data", progress=False)
    (folder / PHOTOS[6].name).write_bytes(good)
    images = load("general-patches:test", data_dir=tmp_path / "data", progress=False)
    assert images.images.shape == (8, 1, 28, 28)
    assert set(images.labels.tolist()) == {PHOTOS.index(p) for p in split_photos("test")}


def test_without_apt_the_error_says_how_to_get_the_photographs(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataNotFoundError) as error:
        load("general-patches:train", progress=False)
    message = str(error.value)
    assert "apt-get is not on PATH" in message
    assert "mate-backgrounds" in message and "plasma-workspace-wallpapers" in message
    assert "GENOOD_DATA" in message
