"""``genood data``: list, fetch and inspect data sets.

genood data list [--data-dir DIR]
genood data fetch NAME... [--data-dir DIR]
genood data show SPEC [--data-dir DIR] [--limit N] [--pad-to N] [--channels C] [--resize N]
"""

from __future__ import annotations

import argparse
import os
import sys

from genood.cli.options import add_limit_option, check_limit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its actions."""
    parser = subparsers.add_parser(
        "data",
        help="list, fetch and inspect data sets",
        description="List the known data sets, fetch them into the cache, inspect a spec. "
        "Specs are NAME[:SPLIT], npz:PATH or imagefolder:PATH.",
    )
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        p.add_argument(
            "--data-dir",
            default=None,
            help="folder with raw data files, directly or in NAME/ subfolders "
            "(default: $GENOOD_DATA)",
        )

    listing = actions.add_parser("list", help="known data sets, what is cached, sizes")
    data_dir(listing)
    listing.set_defaults(func=_list)

    fetching = actions.add_parser(
        "fetch", help="cache data sets (data folder, download, or system package clients)"
    )
    fetching.add_argument("names", nargs="+", metavar="NAME", help="data set names")
    fetching.add_argument("--quiet", action="store_true", help="no progress output")
    data_dir(fetching)
    fetching.set_defaults(func=_fetch)

    show = actions.add_parser(
        "show", help="count, shape, label histogram and pixel statistics of a spec"
    )
    show.add_argument("spec", help="NAME[:SPLIT], npz:PATH or imagefolder:PATH")
    add_limit_option(show, "show")
    show.add_argument("--pad-to", type=int, default=0, help="zero-pad to N x N (0: no)")
    show.add_argument("--channels", type=int, default=0, help="convert to 1 or 3 channels")
    show.add_argument("--resize", type=int, default=0, help="resize to N x N (bilinear)")
    show.add_argument("--quiet", action="store_true", help="no progress output")
    data_dir(show)
    show.set_defaults(func=_show)

    def usage(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)


def human_size(size: int) -> str:
    """Bytes in B/kB/MB/GB (powers of 1000)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def _list(args: argparse.Namespace) -> int:
    from genood.data import list_datasets
    from genood.data.cache import cache_root

    rows = list_datasets(args.data_dir)
    env = " (GENOOD_CACHE)" if os.environ.get("GENOOD_CACHE") else ""
    print(f"cache: {cache_root()}{env}")
    header = ("NAME", "SPLITS", "SHAPE", "CACHED", "SIZE", "DESCRIPTION")
    table = [header]
    for row in rows:
        splits = ",".join(f"{s}*" if s == row["default_split"] else s for s in row["splits"])
        cached = ",".join(row["cached_splits"]) or "-"
        if row["in_data_dir"]:
            cached += f" (data dir: {','.join(row['in_data_dir'])})"
        size = human_size(row["size_bytes"]) if row["size_bytes"] else "-"
        shape = "x".join(map(str, row["shape"]))
        table.append((row["name"], splits, shape, cached, size, row["description"]))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print("* default split; also: npz:PATH, imagefolder:PATH")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from genood.data import fetch
    from genood.data.loading import disk_size

    failed = 0
    for name in args.names:
        try:
            paths = fetch(name, args.data_dir, progress=not args.quiet)
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            print(f"genood data fetch: error: {name}: {error}", file=sys.stderr)
            failed += 1
            continue
        size = disk_size(name)  # the SIZE column of genood data list: arrays + raw files
        splits = sorted(
            {p.name.split(".")[0].removesuffix("-images").removesuffix("-labels") for p in paths}
        )
        print(
            f"{name}: cached {', '.join(splits)} in {paths[0].parent} ({human_size(size)} in "
            "the cache, raw downloads included)"
        )
    return 1 if failed else 0


def _show(args: argparse.Namespace) -> int:
    import numpy as np

    from genood.data import Preprocessing, load

    preprocessing = Preprocessing(pad_to=args.pad_to, channels=args.channels, resize=args.resize)
    data = load(args.spec, args.data_dir, check_limit(args.limit), progress=not args.quiet)
    data = data.preprocessed(preprocessing)
    images, labels = data.images, data.labels
    print(f"spec      {data.spec}")
    print(f"source    {data.source}")
    if not preprocessing.is_identity:
        print(f"preproc.  {preprocessing.cli_flags()}")
    print(f"images    {len(images)} x {'x'.join(map(str, data.shape))} (CxHxW) uint8")
    labeled = labels[labels >= 0]
    if labeled.size:
        counts = np.bincount(labeled, minlength=len(data.classes))
        names = list(data.classes) + [str(i) for i in range(len(data.classes), len(counts))]
        print(f"labels    {len(counts)} classes, {len(labels) - labeled.size} unlabeled")
        for index, (name, count) in enumerate(zip(names, counts)):
            print(f"  {index:>4} {name:<14} {count:>8}")
    else:
        print("labels    none (unlabeled)")
    if len(images):
        total = np.zeros(images.shape[1]), np.zeros(images.shape[1])
        for start in range(0, len(images), 4096):
            chunk = images[start : start + 4096].astype(np.float64)
            total[0][:] += chunk.sum(axis=(0, 2, 3))
            total[1][:] += np.square(chunk).sum(axis=(0, 2, 3))
        per_channel = len(images) * images.shape[2] * images.shape[3]
        mean = total[0] / per_channel
        std = np.sqrt(np.maximum(total[1] / per_channel - mean**2, 0))
        all_mean = total[0].sum() / (per_channel * images.shape[1])
        all_std = np.sqrt(max(total[1].sum() / (per_channel * images.shape[1]) - all_mean**2, 0))
        channels = " ".join(f"{m:.2f}/{s:.2f}" for m, s in zip(mean, std))
        print(f"pixels    mean {all_mean:.2f} std {all_std:.2f} (0..255; per channel {channels})")
    return 0
