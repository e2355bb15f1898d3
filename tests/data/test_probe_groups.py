"""Probe groups and the declared validation / held-out protocol."""

from __future__ import annotations

import pytest

from genood.data import load
from genood.data.probe_groups import (
    FAR,
    GROUPS,
    HELD_OUT_PROBES,
    NAMED,
    NEAR,
    TRANSFORMED,
    VALIDATION_PROBES,
    in_goal,
    probe_group,
    protocol,
    set_group,
)
from genood.data.probes import KINDS


def test_every_probe_kind_has_a_group() -> None:
    assert set(GROUPS) == set(KINDS)
    assert {k for k, g in GROUPS.items() if g == FAR} == {"noise", "constant"}
    assert {k for k, g in GROUPS.items() if g == NEAR} == {"letters", "font-digits", "uci-digits"}
    assert {k for k, g in GROUPS.items() if g == TRANSFORMED} == {
        "vflip",
        "rot90",
        "inverted",
        "hflip",
    }


@pytest.mark.parametrize(
    ("label", "group"),
    [
        ("probe:noise", FAR),
        ("probe:constant:3x32x32", FAR),
        ("probe:font-digits:bold:1x28x28", NEAR),
        ("probe:uci-digits", NEAR),
        ("probe:vflip:fashion-mnist:test", TRANSFORMED),
        ("probe:inverted (fashion-mnist:test)", TRANSFORMED),  # genood reproduce's label
    ],
)
def test_groups_of_specs_and_table_labels(label: str, group: str) -> None:
    assert probe_group(label) == group and set_group(label) == group


def test_named_sets_and_bad_specs() -> None:
    assert set_group("mnist-10k") == NAMED and in_goal("mnist-10k")
    assert not in_goal("probe:hflip:fashion-mnist:test") and in_goal("probe:vflip:mnist:test")
    with pytest.raises(ValueError, match="probe specs look like probe:KIND"):
        probe_group("mnist-10k")
    with pytest.raises(ValueError, match="unknown probe 'chicken'.*known: noise"):
        probe_group("probe:chicken")
    with pytest.raises(ValueError, match="needs the in-distribution test set's spec"):
        protocol("probe:noise")


def test_protocol_is_one_validation_probe_per_group_and_disjoint() -> None:
    chosen = protocol("fashion-mnist:test", headline="mnist-10k")
    assert chosen["validation"] == [
        "probe:noise",
        "probe:letters",
        "probe:vflip:fashion-mnist:test",
    ]
    assert chosen["held_out"][0] == "mnist-10k"
    assert "probe:rot90:fashion-mnist:test" in chosen["held_out"]
    assert chosen["reported_only"] == ["probe:hflip:fashion-mnist:test"]
    every = [s for specs in chosen.values() for s in specs]
    assert len(every) == len(set(every))  # no set both chooses and reports
    assert sorted(probe_group(s) for s in chosen["validation"]) == sorted({FAR, NEAR, TRANSFORMED})
    # every group is held out too, and every kind is in the protocol once
    held = [s for s in chosen["held_out"] if s.startswith("probe:")]
    assert {probe_group(s) for s in held} == {FAR, NEAR, TRANSFORMED}
    kinds = {s.split(":")[1] for s in every if s.startswith("probe:")}
    assert kinds == set(KINDS)
    assert all(in_goal(s) for s in [*chosen["validation"], *chosen["held_out"]])
    assert "{in}" in VALIDATION_PROBES[-1] and len(HELD_OUT_PROBES) == 7
    assert protocol("mnist:test")["validation"][-1] == "probe:vflip:mnist:test"


def test_every_generated_protocol_probe_loads() -> None:
    generated = [s for s in (*VALIDATION_PROBES, *HELD_OUT_PROBES) if "{in}" not in s]
    for spec in generated:
        images = load(spec, limit=2).images
        assert images.shape == (2, 1, 28, 28), spec
