"""Typed hyper-parameter parsing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from genood.models.hparams import parse_hparams


@dataclass(frozen=True)
class _Hp:
    width: int = 4
    rate: float = 0.5
    on: bool = True
    kind: str = "a"


def test_defaults_and_coercion() -> None:
    assert parse_hparams(_Hp, "m", {}) == _Hp()
    assert parse_hparams(_Hp, "m", {"rate": 1}).rate == 1.0


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"depth": 1}, r"unknown hyper-parameter\(s\) \['depth'\]; it takes: width=4"),
        ({"width": True}, "width must be int"),
        ({"on": 1}, "on must be bool"),
        ({"kind": 3}, "kind must be str"),
    ],
)
def test_errors_name_what_was_expected(given: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        parse_hparams(_Hp, "m", given)
