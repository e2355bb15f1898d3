"""Data sets as uint8 ``(N, C, H, W)`` numpy arrays: a registry, format readers, cache, fetching.

    >>> from genood.data import load
    >>> test = load("fashion-mnist:test")          # doctest: +SKIP
    >>> test.images.shape, test.labels[:3]          # doctest: +SKIP
    ((10000, 1, 28, 28), array([9, 2, 1]))

Specs are ``name[:split]`` (``genood data list`` shows the names, splits and default split),
``npz:PATH`` and ``imagefolder:PATH``. See :mod:`genood.data.loading` for where data comes from.
"""

from genood.data.errors import ChecksumError, DataFormatError, DataNotFoundError, UnsafePickleError
from genood.data.imageset import ImageSet, parse_spec
from genood.data.loading import fetch, list_datasets, load
from genood.data.registry import Dataset, Layout, get, names, register
from genood.data.transforms import Preprocessing, fit_to, require_shape

__all__ = [
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "Dataset",
    "ImageSet",
    "Layout",
    "Preprocessing",
    "UnsafePickleError",
    "fetch",
    "fit_to",
    "get",
    "list_datasets",
    "load",
    "names",
    "parse_spec",
    "register",
    "require_shape",
]
