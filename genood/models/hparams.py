"""Typed, validated hyper-parameters for ``genood.models.build``.

Every model family declares a frozen dataclass of its hyper-parameters with defaults
(``GlowHparams``, ``RealNVPHparams``, ``PixelCNNHparams``, ``VAEHparams``, ``HVAEHparams``), and
its builder passes the keyword arguments through :func:`parse_hparams` before constructing the
model from the dataclass. :func:`parse_hparams` fills the dataclass from keyword arguments (as a
TOML ``[model.hparams]`` table gives them) and refuses unknown names and wrong types, with errors
that list what is accepted: every model refuses a typo the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def parse_hparams(cls: type[T], model: str, given: Mapping[str, Any]) -> T:
    """Build ``cls`` from ``given``.

    Raises:
        TypeError: for an unknown name (the message lists the known ones with their defaults)
            or a value of the wrong type (ints are accepted for floats).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # T: a dataclass
    unknown = sorted(set(given) - set(fields))
    if unknown:
        known = ", ".join(f"{n}={f.default!r}" for n, f in fields.items())
        raise TypeError(f"{model} got unknown hyper-parameter(s) {unknown}; it takes: {known}")
    values: dict[str, Any] = {}
    for name, value in given.items():
        default = fields[name].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, str):
            ok = isinstance(value, str)
        elif isinstance(default, tuple):  # a TOML array: a tuple of ints (e.g. latent channels)
            ok = isinstance(value, list | tuple) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            value = tuple(value) if ok else value
        else:
            ok = True
        if not ok:
            expected = "a list of int" if isinstance(default, tuple) else type(default).__name__
            raise TypeError(f"{model} hyper-parameter {name} must be {expected}, got {value!r}")
        values[name] = value
    return cls(**values)


def check_choice(model: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{model}: {name} must be one of {list(choices)}, got {value!r}")


def check_positive(model: str, **values: int) -> None:
    """Raise ``ValueError`` for any value below 1."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{model}: {name} must be >= 1, got {value}")


__all__ = ["check_choice", "check_positive", "parse_hparams"]
