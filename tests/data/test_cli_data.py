"""``genood data list|fetch|show`` through the real argument parser."""

from __future__ import annotations

import re

import numpy as np
from data_builders import trust, write_mnist_like

from genood.cli import main
from genood.data.catalog import MNIST


def test_show_npz(tmp_path, capsys):
    images = np.zeros((4, 1, 2, 2), np.uint8)
    images[:, :, 0, 0] = 255
    np.savez(tmp_path / "a.npz", images=images, labels=np.array([0, 1, 1, 1]))
    assert main(["data", "show", f"npz:{tmp_path / 'a.npz'}", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "images    4 x 1x2x2 (CxHxW) uint8" in out
    assert "labels    2 classes, 0 unlabeled" in out
    assert re.search(r"^ +0 0 +1$", out, re.M) and re.search(r"^ +1 1 +3$", out, re.M)
    assert "pixels    mean 63.75 std 110.42" in out


def test_show_named_with_preprocessing(tmp_path, monkeypatch, capsys):
    write_mnist_like(tmp_path)
    trust(monkeypatch, MNIST, tmp_path, train=30, test=20)
    argv = [
        "data",
        "show",
        "mnist",
        "--data-dir",
        str(tmp_path),
        "--pad-to",
        "32",
        "--channels",
        "3",
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "spec      mnist:test" in out and "images    20 x 3x32x32" in out
    assert "preproc.  --pad-to 32 --channels 3" in out


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["data", "show", "cifar10:valid"]) == 1
    assert "genood data: error: cifar10 has no split 'valid'" in capsys.readouterr().err
    assert main(["data", "fetch", "nope", "--quiet"]) == 1
    assert "error: nope: unknown data set 'nope'" in capsys.readouterr().err
    assert main(["data", "show", "svhn:test", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "data set 'svhn' was not found; sources tried, in order:" in err
    assert "fetch with: genood data fetch svhn, or put" in err


def test_list_and_bare_command(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cache: ") and "imagenet32" in out and "general-patches" in out
    assert re.search(r"^fashion-mnist +train,test\* ", out, re.MULTILINE)  # columns fit the names
    assert main(["data"]) == 2
