"""The registry of named data sets: splits, shape, where their files may lie and how to decode them.

A :class:`Dataset` lists one or more :class:`Layout` s, ways its raw files can lie in a folder
(the official archive, the folder it unpacks to...), each with a decoder to uint8 ``(N, C, H, W)``
images and int64 labels, plus what is needed to fetch and verify the files: published sha256
values, download URLs, fallback package sources, and a hint for sets that must be got by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

Decoder = Callable[[dict[str, Path], str, bool], tuple[np.ndarray, np.ndarray]]


class Source(Protocol):
    """A fallback that puts a data set's raw files into a folder (see :mod:`.sources`)."""

    def describe(self) -> str: ...

    def provide(self, dest: Path, progress: bool = True) -> list[Path]: ...


@dataclass(frozen=True)
class Layout:
    """One way the raw files of some splits can lie in a folder.

    Attributes:
        files: paths relative to the folder (files or folders) that must all exist.
        decode: ``decode(paths_by_name, split, progress) -> (images, labels)``.
        splits: the splits this layout provides.
        check_counts: the layout is an official release, so each split must hold exactly the
            published number of images (False for a user's own image folder).
        at_root: the files may lie directly in a data folder, not only in its ``<name>/``
            subfolder (False for generic names such as ``train/``).
    """

    files: tuple[str, ...]
    decode: Decoder
    splits: tuple[str, ...]
    check_counts: bool = True
    at_root: bool = True


@dataclass
class Dataset:
    """A named data set.

    Attributes:
        name: the name used in specs (``fashion-mnist``).
        description: one line for ``genood data list``.
        shape: ``(C, H, W)`` of every image.
        splits: split names; ``default_split`` is used when a spec names none.
        layouts: where the raw files may lie and how to decode them, in order of preference.
        classes: class names, by label.
        counts: published number of images per split (checked for official layouts).
        sha256: published sha256 per raw file name (files without one are not hash-checked).
        array_sha256: per split, sha256 of the decoded ``(images, labels)`` (see
            :func:`genood.data.cache.array_sha256`), for sets without an official file checksum.
        urls: download URLs per raw file, tried in order (official location first).
        download: per split, the raw files to download for it.
        fallbacks: offline sources (system package clients), tried after the downloads.
        folders: subfolders of a data folder to look in, besides the folder itself.
        aliases: other accepted names (``cifar-10``).
        split_aliases: other accepted split names (``val`` -> ``valid``).
        manual: how to get the files by hand (for data sets with no automatic source).
        order: optional ``order(labels) -> permutation`` applied after decoding and checking
            (``mnist-10k`` is published sorted by digit; interleaving the classes makes a
            ``limit`` take a class-balanced prefix).
    """

    name: str
    description: str
    shape: tuple[int, int, int]
    splits: tuple[str, ...]
    default_split: str
    layouts: tuple[Layout, ...]
    classes: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    array_sha256: dict[str, tuple[str, str]] = field(default_factory=dict)
    urls: dict[str, tuple[str, ...]] = field(default_factory=dict)
    download: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fallbacks: tuple[Source, ...] = ()
    folders: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    split_aliases: dict[str, str] = field(default_factory=dict)
    manual: str = ""
    order: Callable[[np.ndarray], np.ndarray] | None = None

    def check_split(self, split: str | None) -> str:
        """The canonical split name; raises ValueError naming the splits that exist."""
        if split is None or split == "":
            return self.default_split
        split = self.split_aliases.get(split, split)
        if split not in self.splits:
            raise ValueError(
                f"{self.name} has no split {split!r}; its splits are {', '.join(self.splits)} "
                f"(default {self.default_split})"
            )
        return split

    def subfolders(self) -> tuple[str, ...]:
        return self.folders or (self.name,)

    def find(self, folder: Path, split: str) -> tuple[Layout, dict[str, Path]] | None:
        """The first layout providing ``split`` whose files all exist in ``folder/<sub>`` or
        ``folder``, with the paths of its files."""
        candidates = [(Path(folder) / sub, False) for sub in self.subfolders()]
        candidates.append((Path(folder), True))
        for root, is_root in candidates:
            if not root.is_dir():
                continue
            for layout in self.layouts:
                if split not in layout.splits or (is_root and not layout.at_root):
                    continue
                paths = {name: root / name for name in layout.files}
                if all(p.exists() for p in paths.values()):
                    return layout, paths
        return None

    def looked_for(self, split: str) -> str:
        """Human-readable list of what :meth:`find` looks for."""
        options = [" + ".join(layout.files) for layout in self.layouts if split in layout.splits]
        return " or ".join(options)

    def fetch_hint(self, fetching: bool = False) -> str:
        """How to get this data set, for error messages.

        ``fetching``: the hint is for a failed ``genood data fetch``, which must not suggest
        running itself again; it says where to put the files by hand instead.
        """
        if self.manual:
            return self.manual
        files = sorted({f for layout in self.layouts for f in layout.files if f in self.sha256})
        shown = ", ".join(files[:4]) if files else self.looked_for(self.default_split)
        where = f"(directly or in a {self.subfolders()[0]}/ subfolder)"
        if fetching:
            return (
                f"get {shown} by hand, put them in a folder {where}, then run: genood data "
                f"fetch {self.name} --data-dir FOLDER"
            )
        return (
            f"fetch with: genood data fetch {self.name}, or put {shown} in --data-dir / "
            f"GENOOD_DATA {where}"
        )


_REGISTRY: dict[str, Dataset] = {}
_ALIASES: dict[str, str] = {}


def register(dataset: Dataset) -> Dataset:
    """Add (or replace) a named data set."""
    _REGISTRY[dataset.name] = dataset
    for alias in dataset.aliases:
        _ALIASES[alias] = dataset.name
    return dataset


def get(name: str) -> Dataset:
    """The data set called ``name`` (or one of its aliases); raises ValueError listing all."""
    from genood.data import catalog  # noqa: F401  (registers the built-in sets)

    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown data set {name!r}; known: {', '.join(names())}, and the specs "
            "npz:PATH and imagefolder:PATH"
        )
    return _REGISTRY[key]


def names() -> list[str]:
    """Names of all registered data sets, in registration order."""
    from genood.data import catalog  # noqa: F401

    return list(_REGISTRY)
