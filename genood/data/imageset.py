"""``ImageSet``: what :func:`genood.data.load` returns, and the spec syntax that names one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from genood.data.transforms import Preprocessing

PATH_KINDS = ("npz", "imagefolder", "textfile")


def memory_budget() -> int:
    """The most bytes one decoded array may take: half of the machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, OSError, ValueError):  # not POSIX: no check
        return 1 << 62


def require_memory(nbytes: int, what: str) -> None:
    """Refuse to decode ``what`` (``nbytes`` bytes) when it exceeds :func:`memory_budget`.

    Raises:
        DataFormatError: naming ``what``, its size and the budget.
    """
    from genood.data.errors import DataFormatError

    budget = memory_budget()
    if nbytes > budget:
        raise DataFormatError(
            f"{what} would take {nbytes / 2**30:.1f} GiB, more than half of this machine's "
            f"memory ({budget / 2**30:.1f} GiB); use a smaller set or smaller images"
        )


@dataclass
class ImageSet:
    """Images and labels of one split of one data set.

    Attributes:
        images: uint8 ``(N, C, H, W)``.
        labels: int64 ``(N,)``; -1 where unlabeled.
        spec: the normalised spec, ``name:split`` (``npz:/abs/path.npz`` for files).
        name: the data set (``fashion-mnist``, ``npz``, ``imagefolder``).
        split: the split (the absolute path for ``npz:`` and ``imagefolder:``).
        classes: class names by label, when known.
        source: where the arrays came from (cache, data folder, download...).
        preprocessing: the :class:`~genood.data.transforms.Preprocessing` applied, as a dict
            (empty: none).
    """

    images: np.ndarray
    labels: np.ndarray
    spec: str
    name: str
    split: str
    classes: tuple[str, ...] = ()
    source: str = ""
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"{self.spec}: images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{self.images.shape}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"{self.spec}: {len(self.images)} images but {self.labels.shape} labels"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of each image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return len(self.images)

    def preprocessed(self, preprocessing: Preprocessing) -> ImageSet:
        """A copy with ``preprocessing`` applied to the images and recorded."""
        if preprocessing.is_identity:
            return self
        return replace(
            self, images=preprocessing.apply(self.images), preprocessing=preprocessing.to_dict()
        )


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"cifar10:test"`` -> ``("cifar10", "test")``; ``"mnist"`` -> ``("mnist", None)``;
    ``"npz:/a/b.npz"`` -> ``("npz", "/a/b.npz")`` (paths may contain colons);
    ``"probe:inverted:mnist:test"`` -> ``("probe", "inverted:mnist:test")``;
    ``"text:fortunes-de:train"`` -> ``("text", "fortunes-de:train")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"a data spec must be a non-empty string like 'cifar10:test', got {spec!r}"
        )
    if "\x00" in spec:
        raise ValueError(f"spec {spec!r} contains a NUL character, which no name or path has")
    name, sep, rest = spec.strip().partition(":")
    if name.lower() in PATH_KINDS:
        if not rest:
            raise ValueError(f"spec {spec!r} needs a path: {name}:PATH")
        return name.lower(), rest
    if name.lower() == "text":
        if not rest:
            raise ValueError(f"spec {spec!r} needs a corpus: text:NAME[:SPLIT] (genood.data.text)")
        return "text", rest
    if name.lower() == "probe":
        if not rest:
            raise ValueError(f"spec {spec!r} needs a kind: probe:KIND (see genood.data.probes)")
        return "probe", rest
    if sep and (not rest or ":" in rest):
        raise ValueError(f"spec {spec!r} must look like name or name:split")
    return name, rest or None
