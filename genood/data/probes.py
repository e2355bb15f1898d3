"""Probe sets: OOD inputs nobody tuned a detector on, made on the spot.

A detector fitted and calibrated on in-distribution data only should also reject inputs that are
unlike both its training data and the one OOD set it was evaluated on. These sets test that, with
no download (Nalisnick et al. 2019 and Serra et al. 2020 use noise and constant images the same
way). Specs are ``probe:KIND`` or ``probe:KIND:ARG``:

========================  ==========================================================================
``probe:noise``           uniform noise, every sub-pixel independent in 0..255
``probe:constant``        one gray level per image, uniform in 0..255
``probe:letters``         the letters A-Z and a-z in white on black, as MNIST writes digits: glyph
                          in a 20x20 box, centred in 28x28, with random size, stroke, slant, shift
``probe:uci-digits``      the 1,797 handwritten digits of the UCI set bundled with scikit-learn
                          (8x8, 17 gray levels), upscaled to 20x20 and centred like MNIST: real
                          digits from another collection and another scanner
``probe:inverted:SPEC``   ``255 - x`` of the images of data set ``SPEC`` (e.g.
                          ``probe:inverted:fashion-mnist:test``)
========================  ==========================================================================

Generated kinds take an image shape as ARG (``probe:noise:3x32x32``; default ``1x28x28``; gray
glyphs are repeated over 3 channels and resized for other sizes). Every set is seeded (seed 0) and
has 2,000 images (``uci-digits``: 1,797; ``inverted``: as many as ``SPEC``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genood.data.imageset import ImageSet, require_memory

COUNT = 2000
DEFAULT_SHAPE = (1, 28, 28)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def noise(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in 0..255."""
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8)


def constant(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn gray level per image."""
    levels = rng.integers(0, 256, count, dtype=np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, *shape)).copy()


def letters(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """White letters on black, placed as MNIST places its digits (see the module docstring)."""
    glyphs = []
    for index in range(count):
        size = int(rng.integers(18, 30))
        font = _font(size)
        canvas = Image.new("L", (40, 40), 0)
        ImageDraw.Draw(canvas).text(
            (20, 20),
            LETTERS[index % len(LETTERS)],
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=int(rng.integers(0, 3)),
            stroke_fill=255,
        )
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        glyphs.append(_mnist_box(np.asarray(canvas), rng))
    return _to_shape(np.stack(glyphs), shape)


def uci_digits(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """scikit-learn's bundled UCI handwritten digits (8x8), placed as MNIST places its digits."""
    from sklearn.datasets import load_digits

    small = load_digits().images  # float 0..16
    glyphs = [
        _mnist_box(np.round(image * (255.0 / 16.0)).astype(np.uint8), rng, jitter=0)
        for image in small[:count]
    ]
    return _to_shape(np.stack(glyphs), shape)


GENERATORS: dict[str, Callable[[int, tuple[int, int, int], np.random.Generator], np.ndarray]] = {
    "noise": noise,
    "constant": constant,
    "letters": letters,
    "uci-digits": uci_digits,
}
KINDS = (*GENERATORS, "inverted")


def load_probe(
    arg: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    seed: int = 0,
) -> ImageSet:
    """The probe set of spec ``probe:ARG`` (see the module docstring); labels are -1."""
    kind, _, rest = arg.partition(":")
    if kind == "inverted":
        if not rest:
            raise ValueError("probe:inverted needs a data set: probe:inverted:SPEC")
        from genood.data.loading import load

        source = load(rest, data_dir=data_dir, limit=limit, progress=progress)
        images = 255 - source.images
        return ImageSet(images, source.labels, f"probe:inverted:{source.spec}", "probe", arg)
    if kind not in GENERATORS:
        raise ValueError(f"unknown probe {kind!r}; known: {', '.join(KINDS)}")
    shape = _parse_shape(rest) if rest else DEFAULT_SHAPE
    require_memory(COUNT * int(np.prod(shape)), f"probe:{kind} of shape {shape}")
    count = COUNT if limit is None else min(limit, COUNT)
    # Array draws depend on their size: draw the whole set so that a limit keeps its first
    # images (glyphs draw image by image, so a prefix is already the same).
    drawn = COUNT if kind in ("noise", "constant") else count
    images = GENERATORS[kind](drawn, shape, np.random.default_rng(seed))[:count]
    spec = f"probe:{kind}" + (f":{rest}" if rest else "")
    labels = np.full(len(images), -1, dtype=np.int64)
    return ImageSet(images, labels, spec, "probe", arg, source=f"generated (seed {seed})")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (loading it is slower than drawing a glyph)."""
    return ImageFont.load_default(size=size)


def _mnist_box(glyph: np.ndarray, rng: np.random.Generator, jitter: int = 2) -> np.ndarray:
    """Crop to the ink, scale into 20x20 keeping the aspect ratio, centre in 28x28 (MNIST's
    recipe, with the centre of the box rather than of mass) and shift by up to ``jitter``."""
    rows, cols = np.nonzero(glyph > 0)
    if len(rows):
        glyph = glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = glyph.shape
    scale = 20.0 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(glyph).resize(size, Image.Resampling.LANCZOS))
    out = np.zeros((28, 28), dtype=np.uint8)
    top = (28 - box.shape[0]) // 2 + int(rng.integers(-jitter, jitter + 1))
    left = (28 - box.shape[1]) // 2 + int(rng.integers(-jitter, jitter + 1))
    top, left = min(max(top, 0), 28 - box.shape[0]), min(max(left, 0), 28 - box.shape[1])
    out[top : top + box.shape[0], left : left + box.shape[1]] = box
    return out


def _to_shape(gray: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``(N, 28, 28)`` gray glyphs as ``(N, C, H, W)``: resized, channels repeated."""
    channels, height, width = shape
    if (height, width) != gray.shape[1:]:
        gray = np.stack(
            [
                np.asarray(Image.fromarray(g).resize((width, height), Image.Resampling.BILINEAR))
                for g in gray
            ]
        )
    return np.repeat(gray[:, None], channels, axis=1)


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        channels, height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a probe shape looks like 1x28x28 or 3x32x32, got {text!r}") from None
    if channels not in (1, 3) or min(height, width) < 8:
        raise ValueError(f"a probe shape needs 1 or 3 channels and sides >= 8, got {text!r}")
    return channels, height, width
