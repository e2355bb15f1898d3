"""Data sets as a run's model sees them: loaded, preprocessed, checked against its shape.

The run's ``[data]`` table fixes one :class:`~genood.data.transforms.Preprocessing` (pad, convert
channels, resize); the model's ``image_shape`` is what it makes of the training set. Every set
the run touches later (held-out, tracked OOD sets, sets scored by ``genood score``) goes through
the same preprocessing, and a set that still does not fit is refused with the option that fixes
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from genood import config as cfg


def preprocessing_of(data: cfg.DataConfig) -> Any:
    """The run's :class:`~genood.data.transforms.Preprocessing`."""
    from genood.data.transforms import Preprocessing

    return Preprocessing(
        pad_to=data.pad_to, channels=data.channels, resize=data.resize, binarize=data.binarize
    )


def load_set(spec: str, data_dir: str | Path | None, limit: int | None, progress: bool) -> Any:
    """``genood.data.load`` with our conventions (``limit`` 0 or ``None``: everything)."""
    from genood.data import load

    return load(spec, data_dir=data_dir, limit=limit or None, progress=progress)


def fit_images(
    images: np.ndarray,
    preprocessing: Any,
    image_shape: tuple[int, int, int],
    what: str,
) -> np.ndarray:
    """Apply the run's preprocessing after checking that it yields the model's shape.

    Raises:
        ValueError: naming the shapes and the option that makes them agree
            (e.g. "images are 1x28x28, the model expects 1x32x32: use --pad-to 32").
    """
    from genood.data.transforms import require_shape

    shape_in = tuple(int(s) for s in images.shape[1:])
    try:
        require_shape(shape_in, tuple(image_shape), preprocessing)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error
    if preprocessing.is_identity:
        return np.ascontiguousarray(images)
    return preprocessing.apply(images)


def load_tracked(
    specs: list[str],
    preprocessing: Any,
    image_shape: tuple[int, int, int],
    data_dir: str | Path | None,
    limit: int,
    progress: bool,
) -> dict[str, np.ndarray]:
    """The tracked (OOD) sets; a set that cannot be found is reported and left out."""
    from genood.data.errors import DataNotFoundError

    tracked: dict[str, np.ndarray] = {}
    for spec in specs:
        try:
            images = load_set(spec, data_dir, limit, progress).images
        except DataNotFoundError as error:
            tqdm.write(f"[genood] tracked set {spec} is not available, left out: {error}")
            continue
        tracked[spec] = fit_images(
            np.asarray(images), preprocessing, image_shape, f"data.track {spec!r}"
        )
    return tracked
