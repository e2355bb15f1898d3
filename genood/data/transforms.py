"""Explicit, recorded preprocessing so that one model can score data sets of different shapes.

The paper scores FashionMNIST-trained models on MNIST and CIFAR-10-trained models on SVHN,
ImageNet32 and CelebA; when shapes differ the mapping must be stated, not guessed. Operations,
applied in this order to uint8 ``(N, C, H, W)`` images:

1. ``channels``: 1 -> 3 repeats the gray plane; 3 -> 1 is ITU-R BT.601 luma,
   ``Y = 0.299 R + 0.587 G + 0.114 B``, rounded to the nearest integer (as Pillow's ``L``).
2. ``resize``: to ``resize x resize`` with Pillow's bilinear filter (antialiased when shrinking).
3. ``pad_to``: zero-pad to ``pad_to x pad_to``, centred (an odd margin puts the extra pixel on
   the bottom/right). This is how openai/glow brings MNIST from 28x28 to 32x32 (it pads with
   ``np.pad(..., 'minimum')``, which is zero on MNIST's black borders).

``binarize`` is recorded here but not applied by :meth:`Preprocessing.apply`: a binarising model
(the hierarchical VAE with a Bernoulli decoder) draws ``Bernoulli(y / 255)`` in its own
``preprocess``, afresh at every training use and fixed per image when scoring
(:mod:`genood.data.binarize`), so the stored images stay 8-bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

LUMA_601 = np.array([0.299, 0.587, 0.114])
_CHUNK = 8192
_SHAPE_FIELDS = ("pad_to", "channels", "resize")


@dataclass(frozen=True)
class Preprocessing:
    """Pad, convert channels and resize uint8 images; every option 0 means "keep".

    Attributes:
        pad_to: zero-pad square images to this side (must not be smaller than the image).
        channels: convert to this many channels (1 or 3).
        resize: resize to this side (Pillow, bilinear).
        binarize: ``"dynamic"`` when the model binarises its input (recorded only, see the
            module docstring); ``""``: none.
    """

    pad_to: int = 0
    channels: int = 0
    resize: int = 0
    binarize: str = ""

    def __post_init__(self) -> None:
        from genood.data.binarize import BINARIZATIONS

        if self.binarize not in BINARIZATIONS:
            raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {self.binarize!r}")
        for f in _SHAPE_FIELDS:
            value = getattr(self, f)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f} must be an integer >= 0, got {value!r}")
        if self.channels not in (0, 1, 3):
            raise ValueError(f"channels must be 1 or 3 (0: keep), got {self.channels}")

    @property
    def is_identity(self) -> bool:
        return self.pad_to == 0 and self.channels == 0 and self.resize == 0

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """``(C, H, W)`` after preprocessing; raises ValueError when an option cannot apply."""
        c, h, w = (int(s) for s in shape)
        if self.channels and c not in (1, 3):
            raise ValueError(f"cannot convert {c}-channel images to {self.channels} channels")
        c = self.channels or c
        if self.resize:
            h = w = self.resize
        if self.pad_to:
            if self.pad_to < max(h, w):
                raise ValueError(
                    f"cannot pad {h}x{w} images to {self.pad_to}x{self.pad_to} (padding only "
                    f"enlarges): use --resize {self.pad_to} instead"
                )
            h = w = self.pad_to
        return c, h, w

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Preprocess uint8 ``(N, C, H, W)`` images (a new array; the input is not modified).

        An output larger than :func:`~genood.data.imageset.memory_budget` is refused
        (``DataFormatError``) before anything is allocated.
        """
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 (N, C, H, W) images, got {images.dtype} {images.shape}"
            )
        c, h, w = self.output_shape(images.shape[1:])  # validates before any work
        from genood.data.imageset import require_memory

        require_memory(
            len(images) * c * h * w, f"preprocessing {len(images)} images to {c}x{h}x{w}"
        )
        out = images
        if self.channels and self.channels != out.shape[1]:
            out = to_gray(out) if self.channels == 1 else np.repeat(out, 3, axis=1)
        if self.resize and out.shape[2:] != (self.resize, self.resize):
            out = resize(out, self.resize)
        if self.pad_to and out.shape[2:] != (self.pad_to, self.pad_to):
            out = pad(out, self.pad_to)
        return np.array(out, copy=True) if out is images else out

    def to_dict(self) -> dict[str, int | str]:
        """The record of ``preprocessing.json``; ``binarize`` only when set."""
        record: dict[str, int | str] = asdict(self)
        if not self.binarize:
            del record["binarize"]
        return record

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Preprocessing:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing option(s) {unknown}; known: {sorted(known)}")
        binarize = str(values.pop("binarize", ""))
        return cls(binarize=binarize, **{k: int(v) for k, v in values.items()})

    def cli_flags(self) -> str:
        """The command-line options that produce this preprocessing (``--pad-to 32``)."""
        parts = [f"--{f.replace('_', '-')} {getattr(self, f)}" for f in _SHAPE_FIELDS]
        return " ".join(p for p, f in zip(parts, _SHAPE_FIELDS) if getattr(self, f))


def to_gray(images: np.ndarray) -> np.ndarray:
    """RGB -> luma (ITU-R 601), rounded to nearest; ``(N, 3, H, W)`` -> ``(N, 1, H, W)``."""
    out = np.empty((len(images), 1, *images.shape[2:]), np.uint8)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start : start + _CHUNK].astype(np.float64)
        luma = np.tensordot(LUMA_601, chunk, axes=([0], [1]))  # (n, H, W)
        out[start : start + _CHUNK, 0] = np.clip(np.rint(luma), 0, 255)
    return out


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize every image to ``size x size`` with Pillow's bilinear filter."""
    from PIL import Image

    n, c = images.shape[:2]
    out = np.empty((n, c, size, size), np.uint8)
    for i in range(n):
        if c == 3:
            picture = Image.fromarray(np.ascontiguousarray(images[i].transpose(1, 2, 0)), "RGB")
            out[i] = np.asarray(picture.resize((size, size), Image.Resampling.BILINEAR)).transpose(
                2, 0, 1
            )
        else:
            for j in range(c):
                picture = Image.fromarray(np.ascontiguousarray(images[i, j]), "L")
                out[i, j] = np.asarray(picture.resize((size, size), Image.Resampling.BILINEAR))
    return out


def pad(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad to ``size x size``, centred."""
    h, w = images.shape[2:]
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((*images.shape[:2], size, size), np.uint8)
    out[:, :, top : top + h, left : left + w] = images
    return out


def _describe(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(s)) for s in shape)


def fit_to(shape_in: tuple[int, ...], shape_target: tuple[int, ...]) -> Preprocessing:
    """The preprocessing that maps images of ``shape_in`` to ``shape_target`` (both ``(C, H, W)``).

    Smaller square images are zero-padded (as openai/glow pads MNIST 28 -> 32), larger or
    non-square ones resized; channels are converted 1 <-> 3.

    Raises:
        ValueError: no combination of options maps one shape to the other (the message says why).
    """
    c, h, w = (int(s) for s in shape_in)
    tc, th, tw = (int(s) for s in shape_target)
    problem = f"images are {_describe(shape_in)}, the model expects {_describe(shape_target)}"
    channels = 0
    if c != tc:
        if {c, tc} != {1, 3}:
            raise ValueError(f"{problem}: only 1 <-> 3 channel conversion is supported")
        channels = tc
    pad_to = size = 0
    if (h, w) != (th, tw):
        if th != tw:
            raise ValueError(f"{problem}: only square targets are supported; crop the images first")
        if h == w and h < th:
            pad_to = th
        else:
            size = th
    return Preprocessing(pad_to=pad_to, channels=channels, resize=size)


def require_shape(
    shape_in: tuple[int, ...],
    shape_target: tuple[int, ...],
    preprocessing: Preprocessing | None = None,
) -> None:
    """Check that ``preprocessing`` maps ``shape_in`` to ``shape_target``; else say which option fixes it.

    Raises:
        ValueError: e.g. "images are 1x28x28, the model expects 1x32x32: use --pad-to 32".
    """
    preprocessing = preprocessing or Preprocessing()
    if preprocessing.output_shape(shape_in) == tuple(int(s) for s in shape_target):
        return
    fix = fit_to(shape_in, shape_target)
    given = f" (with {preprocessing.cli_flags()})" if not preprocessing.is_identity else ""
    message = (
        f"images are {_describe(shape_in)}{given}, the model expects {_describe(shape_target)}: "
        f"use {fix.cli_flags()}"
    )
    if fix.pad_to:
        message += f" (or --resize {fix.pad_to} to scale instead of padding)"
    raise ValueError(message)
