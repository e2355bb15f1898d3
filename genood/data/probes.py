"""Probe sets: OOD inputs nobody tuned a detector on, made on the spot.

A detector fitted and calibrated on in-distribution data only should also reject inputs that are
unlike both its training data and the one OOD set it was evaluated on. These sets test that, with
no download (Nalisnick et al. 2019 and Serra et al. 2020 use noise and constant images the same
way). Specs are ``probe:KIND``, ``probe:KIND:ARG`` or, for transformed sets, ``probe:KIND:SPEC``;
the group of each kind is in :mod:`genood.data.probe_groups`:

==============================  ====================================================================
``probe:noise``                 far-OOD: uniform noise, every sub-pixel independent in 0..255
``probe:constant``              far-OOD: one gray level per image, uniform in 0..255
``probe:letters``               near-OOD: A-Z and a-z in white on black, as MNIST writes digits:
                                glyph in a 20x20 box, centred in 28x28, random size, stroke, slant,
                                shift (:mod:`genood.data.glyphs`)
``probe:font-digits:WEIGHT``    near-OOD: 0-9 in Pillow's bundled font, placed the same way, with
                                random slant and shift, at stroke weight ``thin`` (the font's own
                                stroke, MNIST's ink share), ``regular`` or ``bold``; the three share
                                their draws and differ in stroke only
``probe:uci-digits``            near-OOD: the 1,797 handwritten digits of the UCI set bundled with
                                scikit-learn (8x8, 17 gray levels), upscaled to 20x20 and centred
                                like MNIST: real digits from another collection and scanner
``probe:inverted:SPEC``         transformed: ``255 - x`` of the images of data set ``SPEC``
                                (``probe:inverted:fashion-mnist:test``)
``probe:vflip:SPEC``            transformed: ``SPEC`` upside down (rows reversed)
``probe:rot90:SPEC``            transformed: ``SPEC`` turned 90 degrees counter-clockwise (an H x W
                                set comes out W x H)
``probe:hflip:SPEC``            transformed: ``SPEC`` mirrored left-right (columns reversed); a
                                mirrored shirt is still a shirt, so it is reported but no detector
                                is asked to reject it (see docs/detection.md)
==============================  ====================================================================

Generated kinds take an image shape as their last ARG (``probe:noise:3x32x32``,
``probe:font-digits:bold:3x32x32``; default ``1x28x28``; gray glyphs are repeated over 3 channels
and resized for other sizes). Every generated set is seeded (seed 0) and has 2,000 images
(``uci-digits``: 1,797) labelled -1; a transformed set has the images and labels of ``SPEC``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from genood.data.glyphs import STROKES, font_digits, letters, uci_digits
from genood.data.imageset import ImageSet, require_memory

COUNT = 2000
DEFAULT_SHAPE = (1, 28, 28)


def noise(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in 0..255."""
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8)


def constant(count: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn gray level per image."""
    levels = rng.integers(0, 256, count, dtype=np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, *shape)).copy()


GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "noise": noise,
    "constant": constant,
    "letters": letters,
    "font-digits": font_digits,
    "uci-digits": uci_digits,
}
# Kinds whose first ARG picks a variant (generator keyword, allowed values) before the shape.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {"font-digits": ("weight", tuple(STROKES))}
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "inverted": lambda x: 255 - x,
    "vflip": lambda x: np.ascontiguousarray(x[:, :, ::-1, :]),
    "rot90": lambda x: np.ascontiguousarray(np.rot90(x, k=1, axes=(2, 3))),
    "hflip": lambda x: np.ascontiguousarray(x[:, :, :, ::-1]),
}
KINDS = (*GENERATORS, *TRANSFORMS)


def load_probe(
    arg: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    seed: int = 0,
) -> ImageSet:
    """The probe set of spec ``probe:ARG`` (see the module docstring)."""
    kind, _, rest = arg.partition(":")
    if kind in TRANSFORMS:
        if not rest:
            raise ValueError(f"probe:{kind} needs a data set: probe:{kind}:SPEC")
        from genood.data.loading import load

        source = load(rest, data_dir=data_dir, limit=limit, progress=progress)
        images = TRANSFORMS[kind](source.images)
        return ImageSet(images, source.labels, f"probe:{kind}:{source.spec}", "probe", arg)
    if kind not in GENERATORS:
        raise ValueError(f"unknown probe {kind!r}; known: {', '.join(KINDS)}")
    options: dict[str, str] = {}
    name = kind
    if kind in VARIANTS:
        keyword, allowed = VARIANTS[kind]
        variant, _, rest = rest.partition(":")
        if variant not in allowed:
            raise ValueError(
                f"probe:{kind} needs a {keyword} first, one of {', '.join(allowed)}: "
                f"probe:{kind}:{allowed[0]} (then optionally a shape, "
                f"probe:{kind}:{allowed[0]}:3x32x32); got {variant!r}"
            )
        options[keyword] = variant
        name = f"{kind}:{variant}"
    shape = _parse_shape(rest) if rest else DEFAULT_SHAPE
    require_memory(COUNT * int(np.prod(shape)), f"probe:{name} of shape {shape}")
    count = COUNT if limit is None else min(limit, COUNT)
    # Array draws depend on their size: draw the whole set so that a limit keeps its first
    # images (glyphs draw image by image, so a prefix is already the same).
    drawn = COUNT if kind in ("noise", "constant") else count
    rng = np.random.default_rng(seed)
    images = GENERATORS[kind](drawn, shape, rng, **options)[:count]
    spec = f"probe:{name}" + (f":{rest}" if rest else "")
    labels = np.full(len(images), -1, dtype=np.int64)
    return ImageSet(images, labels, spec, "probe", arg, source=f"generated (seed {seed})")


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        channels, height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a probe shape looks like 1x28x28 or 3x32x32, got {text!r}") from None
    if channels not in (1, 3) or min(height, width) < 8:
        raise ValueError(f"a probe shape needs 1 or 3 channels and sides >= 8, got {text!r}")
    return channels, height, width
