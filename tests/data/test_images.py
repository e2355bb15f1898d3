"""Image folders (flat or one class per subfolder) and the CelebA layout, through Pillow."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from genood.data import DataNotFoundError, load
from genood.data.catalog import CELEBA
from genood.data.errors import DataFormatError
from genood.data.formats.images import center_crop_resize, read_image_folder


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _rgb(seed, h=6, w=5):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_class_subfolders(tmp_path):
    _png(tmp_path / "cat" / "b.png", _rgb(0))
    _png(tmp_path / "cat" / "a.png", _rgb(1))
    _png(tmp_path / "dog" / "deeper" / "c.png", _rgb(2))
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"junk")  # hidden files are skipped
    images, labels, classes = read_image_folder(tmp_path, progress=False)
    assert classes == ["cat", "dog"] and list(labels) == [0, 0, 1]
    assert images.shape == (3, 3, 6, 5)
    assert np.array_equal(images[0], _rgb(1).transpose(2, 0, 1))  # sorted: a.png first


def test_flat_grayscale_folder_is_unlabeled(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    _png(tmp_path / "x.png", gray)
    _png(tmp_path / "y.png", gray[::-1].copy())
    data = load(f"imagefolder:{tmp_path}", progress=False)
    assert data.images.shape == (2, 1, 6, 8) and list(data.labels) == [-1, -1]
    assert data.spec == f"imagefolder:{tmp_path}" and np.array_equal(data.images[0, 0], gray)


def test_jpeg_is_read(tmp_path):
    Image.fromarray(_rgb(3, 16, 16)).save(tmp_path / "a.jpg", quality=95)
    images, _, _ = read_image_folder(tmp_path, progress=False)
    assert images.shape == (1, 3, 16, 16)


def test_non_image_file_is_named(tmp_path):
    _png(tmp_path / "a.png", _rgb(0))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataFormatError, match=r"notes.txt is not an image file"):
        read_image_folder(tmp_path, progress=False)


def test_corrupt_image_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataFormatError, match=r"broken.png is not an image Pillow can read"):
        read_image_folder(tmp_path, progress=False)


def test_mixed_sizes_and_channels(tmp_path):
    _png(tmp_path / "a.png", _rgb(0, 6, 5))
    _png(tmp_path / "b.png", _rgb(0, 7, 5))
    with pytest.raises(DataFormatError, match=r"a.png is 3x6x5 \(CxHxW\) but .*b.png is 3x7x5"):
        read_image_folder(tmp_path, progress=False)
    (tmp_path / "b.png").unlink()
    _png(tmp_path / "b.png", np.zeros((6, 5), np.uint8))
    with pytest.raises(DataFormatError, match=r"b.png is 1x6x5"):
        read_image_folder(tmp_path, progress=False)


def test_mixed_layout_and_empty(tmp_path):
    _png(tmp_path / "loose.png", _rgb(0))
    _png(tmp_path / "cls" / "a.png", _rgb(0))
    with pytest.raises(DataFormatError, match="mixes files"):
        read_image_folder(tmp_path, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="holds no images"):
        read_image_folder(tmp_path / "empty", progress=False)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        read_image_folder(tmp_path / "missing", progress=False)


def test_center_crop_resize_takes_the_centre():
    face = np.zeros((218, 178, 3), np.uint8)
    face[35:183, 15:163] = 200  # the 148x148 centre of a 178x218 aligned CelebA image
    out = np.asarray(center_crop_resize(Image.fromarray(face), 148, 32))
    assert out.shape == (32, 32, 3) and (out == 200).all()


def _celeba(root, zipped=False):
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        Image.fromarray(_rgb(i, 218, 178)).save(folder / name, quality=90)
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n} {code}\n" for n, code in zip(names, [0, 0, 0, 1, 2, 2]))
    )
    if zipped:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as archive:
            for name in names:
                archive.write(folder / name, f"img_align_celeba/{name}")
        for name in names:
            (folder / name).unlink()
        folder.rmdir()


@pytest.mark.parametrize("zipped", [False, True])
def test_celeba_layout(tmp_path, monkeypatch, zipped):
    _celeba(tmp_path / "celeba", zipped)
    monkeypatch.setitem(CELEBA.counts, "test", 2)
    data = load("celeba", data_dir=tmp_path, progress=False)
    assert data.spec == "celeba:test" and data.images.shape == (2, 3, 32, 32)
    assert list(data.labels) == [-1, -1]
    monkeypatch.setitem(CELEBA.counts, "valid", 1)
    assert len(load("celeba:val", data_dir=tmp_path, progress=False)) == 1


def test_celeba_bad_partition_line(tmp_path):
    _celeba(tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with (
        pytest.raises(
            DataNotFoundError, match=r"list_eval_partition.txt:1: expected 'FILE.jpg 0\|1\|2'"
        ),
        pytest.warns(UserWarning),
    ):
        load("celeba:train", data_dir=tmp_path, progress=False)


def test_celeba_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as caught:
        load("celeba:test", data_dir=tmp_path)
    message = str(caught.value)
    assert "img_align_celeba.zip" in message and "Google Drive" in message
    assert f"--data-dir {tmp_path}: no img_align_celeba + list_eval_partition.txt" in message
