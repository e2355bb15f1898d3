"""``build(name, image_shape, **hparams)``: one entry point for every likelihood model.

Model files register a builder with :func:`register`; the registry imports them lazily so that
``import genood.models`` stays cheap and a model family that fails to import does not take the
others down.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from genood.models.base import LikelihoodModel

Builder = Callable[..., LikelihoodModel]

_BUILDERS: dict[str, Builder] = {}
# name -> module that registers it on import
_MODULES: dict[str, str] = {
    "glow": "genood.models.glow",
    "cv-glow": "genood.models.glow",
    "realnvp": "genood.models.realnvp",
    "pixelcnn": "genood.models.pixelcnn",
    "vae": "genood.models.vae",
    "hvae": "genood.models.hvae",
    "diffusion": "genood.models.diffusion",
    "bytelm": "genood.models.bytelm",
}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder(image_shape, **hparams)`` available as ``build(name, ...)``."""

    def decorate(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        return builder

    return decorate


def available() -> list[str]:
    """Names :func:`build` accepts: the built-in models and any registered since."""
    return sorted(set(_MODULES) | set(_BUILDERS))


def build(name: str, image_shape: tuple[int, int, int], **hparams: Any) -> LikelihoodModel:
    """Build the likelihood model ``name`` for images of ``image_shape = (C, H, W)``.

    Raises:
        KeyError: for an unknown name (the message lists the known ones).
        TypeError: for a hyper-parameter the model does not take.
    """
    if name not in _BUILDERS:
        if name not in _MODULES:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(available())}")
        importlib.import_module(_MODULES[name])
    return _BUILDERS[name](tuple(image_shape), **hparams)
