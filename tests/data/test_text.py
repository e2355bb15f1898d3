"""The text side of the data layer: encoding, seeded splits, specs, sources, cache, errors.

Only tiny generated files: a fake unpacked Debian package stands in for apt (never the network).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from genood.data import load
from genood.data.cache import CacheEntry
from genood.data.errors import DataNotFoundError
from genood.data.text import SEQ_LEN, decode, encode, lengths, split_texts
from genood.data.text_sources import (
    FORTUNE_ROOT,
    clean,
    fortune_files,
    fortunes,
    split_fortunes,
    unpack_package,
)

FORTUNE_FILE = "First fortune.\n%\nSecond one,\n  on two lines.\n%\n%\nThird: caf\xe9.\n%\n"


def test_encode_pads_with_zeros_and_truncates_at_the_length() -> None:
    rows = encode(["ab", "x" * 200, "caf\u00e9"], length=8)
    assert rows.shape == (3, 1, 1, 8) and rows.dtype == np.uint8
    assert rows[0, 0, 0].tolist() == [97, 98, 0, 0, 0, 0, 0, 0]
    assert lengths(rows).tolist() == [2, 8, 5]  # "é" is two UTF-8 bytes
    assert decode(rows[0]) == "ab" and decode(rows[2]) == "caf\u00e9"
    with pytest.raises(ValueError, match="NUL"):
        encode(["a\0b"])
    with pytest.raises(ValueError, match="empty"):
        encode([""])


def test_splits_are_seeded_disjoint_and_deduplicated() -> None:
    texts = [f"text {i}" for i in range(50)] + ["text 3", "text 7"]
    train, test = split_texts(texts, "train"), split_texts(texts, "test")
    assert len(test) == 5 and len(train) == 45
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(set(texts))
    assert split_texts(texts, "test") == test  # the same every time
    assert split_texts(texts, "test", seed=1) != test


def test_fortune_files_split_on_percent_lines_and_are_cleaned() -> None:
    assert split_fortunes(FORTUNE_FILE) == [
        "First fortune.",
        "Second one,\n  on two lines.",
        "Third: caf\xe9.",
    ]
    assert clean("b\x08bold\r\n\0x ") == "bold\nx"


def _fake_package(cache: Path, corpus: str, package: str, folder: str) -> Path:
    """An unpacked package as unpack_package leaves it, with a .deb that apt never fetched."""
    dest = cache / "downloads" / f"text-{corpus}"
    base = dest / "root" / package / FORTUNE_ROOT / folder
    (base / "off").mkdir(parents=True)
    (dest / f"{package}_1.0_all.deb").write_bytes(b"not a real deb")
    (base / "sprueche").write_bytes(FORTUNE_FILE.encode("latin-1"))  # an old Latin-1 file
    (base / "sprueche.dat").write_bytes(b"\0\0index")
    (base / "off" / "rot13").write_text("Bssrafvir.\n%\n")
    os.symlink(base / "sprueche", base / "sprueche.u8")
    return base


def test_a_fortune_package_leaves_out_indexes_links_and_offensive_folders(tmp_path: Path) -> None:
    cache = Path(os.environ["GENOOD_CACHE"])
    base = _fake_package(cache, "fortunes-de", "fortunes-de", "de")
    assert [p.name for p in fortune_files(base.parents[len(Path(FORTUNE_ROOT).parts)], "de")] == [
        "sprueche"
    ]
    texts, provenance = fortunes("fortunes-de", progress=False)
    assert texts == ["First fortune.", "Second one,\n  on two lines.", "Third: caf\xe9."]
    assert provenance["packages"][0]["files"] == ["sprueche"]
    assert len(provenance["packages"][0]["sha256"]) == 64


def test_text_specs_load_split_and_cache(tmp_path: Path) -> None:
    cache = Path(os.environ["GENOOD_CACHE"])
    _fake_package(cache, "fortunes-de", "fortunes-de", "de")
    test = load("text:fortunes-de", progress=False)  # the default split is test
    assert test.spec == "text:fortunes-de:test" and test.images.shape == (1, 1, 1, SEQ_LEN)
    train = load("text:fortunes-de:train", progress=False)
    assert len(train) == 2 and decode(test.images[0]) not in {decode(r) for r in train.images}
    entry = CacheEntry("text-fortunes-de", f"test-L{SEQ_LEN}")
    assert entry.exists() and entry.meta()["texts_unique"] == 3
    shutil.rmtree(cache / "downloads")  # served from the cache now
    assert np.array_equal(load("text:fortunes-de:test", progress=False).images, test.images)
    np.save(entry.images_path, np.zeros_like(test.images))  # tampered with
    with pytest.raises(ValueError, match="delete"):
        load("text:fortunes-de:test", progress=False)


def test_generated_and_file_specs(tmp_path: Path) -> None:
    chars = load("text:repeat-char:test", progress=False)
    for row in chars.images[:20]:
        assert len(set(decode(row))) == 1
    words = load("text:repeat-word:test", limit=5, progress=False)
    assert len(words) == 5 and all(len(set(decode(r).split())) == 1 for r in words.images)
    path = tmp_path / "mine.txt"
    path.write_text("one paragraph\n\nanother\none\n")
    mine = load(f"textfile:{path}", progress=False)
    assert sorted(decode(r) for r in mine.images) == ["another\none", "one paragraph"]
    code = load("text:python-code:test", limit=3, progress=False)
    assert code.images.shape == (3, 1, 1, SEQ_LEN) and lengths(code.images).min() > 0


def test_errors_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="known: fortunes-en.*textfile:PATH"):
        load("text:klingon")
    with pytest.raises(ValueError, match="splits are train, test, all"):
        load("text:repeat-char:valid")
    with pytest.raises(DataNotFoundError, match="no such file"):
        load(f"textfile:{tmp_path / 'absent.txt'}")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataNotFoundError, match=r"apt-get/dpkg are not on PATH.*textfile:PATH"):
        load("text:fortunes-it:test", progress=False)  # not cached, and no apt client


def test_unpack_package_refuses_without_apt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="put its .deb in"):
        unpack_package("fortunes-it", tmp_path, progress=False)
