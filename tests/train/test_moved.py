"""A run tree moved or copied whole resumes; a different training set is still refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from train_helpers import tiny_config, write_images

from genood.train.fit import fit
from genood.train.moved import same_moved_data


def _experiment(root: Path, steps: int) -> None:
    """An experiment tree as genood reproduce lays it out: ROOT/data/in-train.npz, trained on
    by ROOT/models/main."""
    (root / "data").mkdir(parents=True)
    spec = write_images(root / "data" / "in-train.npz", 48, seed=1)
    fit(tiny_config(spec, steps=steps), root / "models" / "main", progress=False)


def _steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [e["step"] for e in map(json.loads, lines) if e["event"] == "train"]


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_tree_resumes_with_its_data_under_the_new_path(
    tmp_path: Path, how: str
) -> None:
    _experiment(tmp_path / "old", steps=4)
    new_root = tmp_path / "elsewhere" / "new"
    new_root.parent.mkdir()
    (shutil.move if how == "move" else shutil.copytree)(tmp_path / "old", new_root)
    config = tiny_config(f"npz:{new_root / 'data' / 'in-train.npz'}", steps=6)
    fit(config, new_root / "models" / "main", progress=False)  # resumes at step 4
    assert _steps(new_root / "models" / "main") == [2, 4, 6]


def test_a_copied_tree_with_other_data_under_the_same_name_is_refused(tmp_path: Path) -> None:
    _experiment(tmp_path / "old", steps=4)
    new_root = tmp_path / "new"
    shutil.copytree(tmp_path / "old", new_root)
    write_images(new_root / "data" / "in-train.npz", 48, seed=2)  # other images, same name
    config = tiny_config(f"npz:{new_root / 'data' / 'in-train.npz'}", steps=6)
    with pytest.raises(ValueError, match="cannot resume .* different data.train"):
        fit(config, new_root / "models" / "main", progress=False)


def test_only_a_file_kept_in_the_run_tree_counts_as_moved(tmp_path: Path) -> None:
    checkpoint = tmp_path / "exp" / "models" / "main" / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    kept = tmp_path / "exp" / "data" / "in-train.npz"
    kept.parent.mkdir()
    np.savez(kept, images=np.zeros((1, 1, 2, 2), np.uint8))
    moved_from = "npz:/gone/exp/data/in-train.npz"
    assert same_moved_data(moved_from, f"npz:{kept}", checkpoint)
    # another name, another place in the tree, or not an npz file: not the same data
    assert not same_moved_data("npz:/gone/exp/data/other.npz", f"npz:{kept}", checkpoint)
    assert not same_moved_data("npz:/gone/exp/in-train.npz", f"npz:{kept}", checkpoint)
    assert not same_moved_data("fashion-mnist:train", f"npz:{kept}", checkpoint)
    # a file outside the run's tree (beside it, under a common root only): never
    beside = tmp_path / "elsewhere" / "in-train.npz"
    beside.parent.mkdir()
    np.savez(beside, images=np.zeros((1, 1, 2, 2), np.uint8))
    outside = tmp_path.parent / "x" / "checkpoints" / "last.pt"
    assert not same_moved_data("npz:/gone/in-train.npz", f"npz:{beside}", outside)
