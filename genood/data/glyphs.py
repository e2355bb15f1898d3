"""Glyph probe sets: characters drawn, or scanned elsewhere, then placed as MNIST places digits.

Every generator here returns uint8 ``(count, C, H, W)`` white strokes on black, built at 28x28
by MNIST's recipe (:func:`mnist_box`: crop to the ink, scale into a 20x20 box keeping the aspect
ratio, centre in 28x28) and then resized and repeated over channels to ``shape``
(:func:`to_shape`). Randomness comes only from the ``rng`` passed in, drawn glyph by glyph, so a
prefix of a set is the same set's first images.

Text is drawn with Pillow's bundled font (Aileron Regular, embedded in Pillow >= 10.1 and used
whenever Pillow has FreeType), never a system font: a system font would make the same spec
give other images on another machine (a probe set must be the same everywhere it is reported).

Stroke weights of ``font-digits`` (:data:`STROKES`) are Pillow's ``stroke_width`` in pixels at
the drawing size, 64 px: the glyph is about 46 px tall there and 20 px after :func:`mnist_box`,
so ``thin`` keeps the font's own stroke (about 2 px at 28x28, MNIST's ink share), ``regular``
adds 2 px on each side (about 3 px) and ``bold`` 4 px (4-5 px, holes nearly closed).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
STROKES = {"thin": 0, "regular": 2, "bold": 4}
DIGIT_SIZE = 64


def letters(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A-Z, a-z in turn, with random size (18-29 px), stroke (0-2 px), slant and shift."""
    glyphs = []
    for index in range(count):
        size = int(rng.integers(18, 30))
        canvas = _draw(LETTERS[index % len(LETTERS)], size, int(rng.integers(0, 3)), 40)
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        glyphs.append(mnist_box(np.asarray(canvas), rng))
    return to_shape(np.stack(glyphs), shape)


def font_digits(
    count: int, shape: tuple[int, int, int], rng: np.random.Generator, weight: str = "regular"
) -> np.ndarray:
    """0-9 in turn at stroke weight ``weight`` (a key of :data:`STROKES`), with random slant
    (+-15 degrees) and shift; the draws do not depend on the weight, so the three weights show
    the same digits at the same angles and places and differ in stroke only."""
    if weight not in STROKES:
        raise ValueError(f"unknown stroke weight {weight!r}; use one of {', '.join(STROKES)}")
    glyphs = []
    for index in range(count):
        canvas = _draw(DIGITS[index % len(DIGITS)], DIGIT_SIZE, STROKES[weight], 2 * DIGIT_SIZE)
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        glyphs.append(mnist_box(np.asarray(canvas), rng))
    return to_shape(np.stack(glyphs), shape)


def uci_digits(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """scikit-learn's bundled UCI handwritten digits (8x8, 17 levels), placed without shift."""
    from sklearn.datasets import load_digits

    small = load_digits().images  # float 0..16
    glyphs = [
        mnist_box(np.round(image * (255.0 / 16.0)).astype(np.uint8), rng, jitter=0)
        for image in small[:count]
    ]
    return to_shape(np.stack(glyphs), shape)


def _draw(text: str, size: int, stroke: int, side: int) -> Image.Image:
    """``text`` in white on a black ``side`` x ``side`` canvas, centred, Pillow's bundled font."""
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text(
        (side // 2, side // 2),
        text,
        fill=255,
        font=_font(size),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    return canvas


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (loading it is slower than drawing a glyph)."""
    return ImageFont.load_default(size=size)


def mnist_box(glyph: np.ndarray, rng: np.random.Generator, jitter: int = 2) -> np.ndarray:
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


def to_shape(gray: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
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
