"""Random multi-scale square crops of photographs, resized to small images (seeded).

The general-domain pool of Schirrmeister et al. (2020) is a broad set of natural images (they used
80 Million Tiny Images); :mod:`genood.data.general` cuts one from a few large photographs. This
module is the cutting, independent of where the photographs come from:

* each output image comes from one photograph, dealt round-robin (image ``i`` from photograph
  ``i % P``), so every photograph gives the same number of crops whatever its size;
* the side ``s`` of the square crop is log-uniform between ``min_side`` source pixels and the
  photograph's short side, so the crops span every scale: from pixel-level texture (grain, leaf
  veins, JPEG noise) to the whole scene;
* the crop's position is uniform (real-valued: sub-pixel boxes), then it is resized to
  ``size x size`` with Pillow's antialiasing Lanczos filter, from the level of a 2x pyramid whose
  side is at least ``4 * size`` (so large crops cost no more than small ones);
* grayscale is Pillow's ``L`` (ITU-R 601-2 luma), colour is ``RGB`` (alpha dropped).

Contract: the same photographs, ``count``, ``size``, ``channels`` and ``seed`` give the same
uint8 ``(count, channels, size, size)`` array on one Pillow version (the resampling code may change
across versions; the cache records what was decoded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError
from genood.data.formats.images import open_image, to_array


def pyramid(image, smallest: int) -> list:
    """``image`` and its successive halvings (Pillow's ``reduce(2)``, a 2x2 box average), down to
    the last level whose short side is still at least ``smallest``."""
    levels = [image]
    while min(levels[-1].size) // 2 >= smallest:
        levels.append(levels[-1].reduce(2))
    return levels


def crop_resized(levels: Sequence, box: tuple[float, float, float], size: int):
    """The square ``(x, y, side)`` of level 0, resized to ``size``, read from the smallest pyramid
    level on which the square is still at least ``4 * size`` pixels wide."""
    from PIL import Image

    x, y, side = box
    level = 0
    while level + 1 < len(levels) and side / 2 ** (level + 1) >= 4 * size:
        level += 1
    scale = 2.0**level
    width, height = levels[level].size
    left, top = x / scale, y / scale
    right, bottom = min((x + side) / scale, width), min((y + side) / scale, height)
    return levels[level].resize(
        (size, size), Image.Resampling.LANCZOS, box=(left, top, right, bottom)
    )


def sample_boxes(
    rng: np.random.Generator, width: int, height: int, count: int, min_side: int
) -> np.ndarray:
    """``count`` squares ``(x, y, side)`` inside a ``width x height`` photograph; ``side``
    log-uniform in ``[min_side, min(width, height)]``, position uniform."""
    short = min(width, height)
    if short < min_side:
        raise DataFormatError(
            f"a {width}x{height} photograph is smaller than the {min_side}-pixel smallest crop"
        )
    sides = np.exp(rng.uniform(math.log(min_side), math.log(short), count))
    xs = rng.uniform(0.0, 1.0, count) * (width - sides)
    ys = rng.uniform(0.0, 1.0, count) * (height - sides)
    return np.stack([xs, ys, sides], axis=1)


def read_patches(
    photos: Sequence[Path],
    count: int,
    size: int,
    channels: int,
    seed: int,
    min_side: int | None = None,
    labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops of ``photos`` as uint8 ``(count, channels, size, size)`` and their labels.

    Args:
        photos: image files Pillow reads (JPEG, PNG, WebP...), at least one.
        count: number of crops, dealt round-robin over ``photos``.
        size: side of the output images.
        channels: 1 (grayscale, ``L``) or 3 (``RGB``).
        seed: seeds the positions and scales (one generator per photograph, seeded by
            ``(seed, index)``, so a photograph's crops do not depend on the others).
        min_side: smallest crop side in source pixels (default ``size``: no upsampling).
        labels: the label of each photograph's crops (default its index in ``photos``).

    Raises:
        DataFormatError: a file is not a readable image, or smaller than ``min_side``.
        ValueError: bad arguments.
    """
    if not photos:
        raise ValueError("read_patches needs at least one photograph")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if count < 0 or size < 1:
        raise ValueError(f"count must be >= 0 and size >= 1, got {count} and {size}")
    labels = list(range(len(photos))) if labels is None else list(labels)
    if len(labels) != len(photos):
        raise ValueError(f"{len(labels)} labels for {len(photos)} photographs")
    smallest = size if min_side is None else min_side
    images = np.empty((count, channels, size, size), np.uint8)
    targets = np.empty(count, np.int64)
    for index, path in enumerate(photos):
        rows = np.arange(index, count, len(photos))
        if rows.size == 0:
            continue
        image = open_image(Path(path), str(path)).convert("L" if channels == 1 else "RGB")
        width, height = image.size
        rng = np.random.default_rng([seed, index])
        try:
            boxes = sample_boxes(rng, width, height, rows.size, smallest)
        except DataFormatError as error:
            raise DataFormatError(f"{path}: {error}") from None
        levels = pyramid(image, 4 * size)
        for row, box in zip(rows, boxes, strict=True):
            images[row] = to_array(crop_resized(levels, (box[0], box[1], box[2]), size))
        targets[rows] = labels[index]
    return images, targets
