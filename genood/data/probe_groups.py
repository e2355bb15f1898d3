"""Probe groups and the declared protocol: which probes may choose a detector, which only report.

Every probe kind of :mod:`genood.data.probes` belongs to one group (:data:`GROUPS`):

* ``far-OOD``: noise, constant: nothing like any image set;
* ``near-OOD``: letters, font digits, UCI digits: strokes on black, like MNIST, unlike its data;
* ``transformed``: vflip, rot90, inverted, hflip of the in-distribution test set: its own
  pixels, rearranged or negated.

``hflip`` is in its group but outside the goal (:data:`OUTSIDE_GOAL`): a mirrored shirt, shoe or
bag is still a shirt, shoe or bag (FashionMNIST holds both orientations of most classes), so a
detector that accepts it is right; it is reported, never counted against a detector.

The protocol (docs/detection.md, "Declared protocol"): the recommended detector and its settings
are chosen on the :data:`VALIDATION_PROBES` only, one per group; the :data:`HELD_OUT_PROBES` and
the experiment's headline OOD set are reported and never used to choose. Templates hold ``{in}``
for the in-distribution test set's spec; :func:`protocol` fills it in.
"""

from __future__ import annotations

FAR = "far-OOD"
NEAR = "near-OOD"
TRANSFORMED = "transformed"
NAMED = "data set"  # the group label of an OOD set that is not a probe (mnist-10k...)

GROUPS: dict[str, str] = {
    "noise": FAR,
    "constant": FAR,
    "letters": NEAR,
    "font-digits": NEAR,
    "uci-digits": NEAR,
    "vflip": TRANSFORMED,
    "rot90": TRANSFORMED,
    "inverted": TRANSFORMED,
    "hflip": TRANSFORMED,
}
OUTSIDE_GOAL = ("hflip",)

VALIDATION_PROBES = ("probe:noise", "probe:letters", "probe:vflip:{in}")
HELD_OUT_PROBES = (
    "probe:constant",
    "probe:font-digits:thin",
    "probe:font-digits:regular",
    "probe:font-digits:bold",
    "probe:uci-digits",
    "probe:rot90:{in}",
    "probe:inverted:{in}",
)
REPORTED_ONLY = ("probe:hflip:{in}",)


def probe_kind(spec: str) -> str:
    """The kind of a probe spec or table label: ``probe:font-digits:bold:1x28x28`` ->
    ``font-digits``, ``probe:inverted (fashion-mnist:test)`` -> ``inverted``."""
    if not spec.lower().startswith("probe:"):
        raise ValueError(f"{spec!r} is not a probe spec; probe specs look like probe:KIND")
    kind = spec[len("probe:") :].split(":", 1)[0].split(" ", 1)[0].lower()
    if kind not in GROUPS:
        raise ValueError(f"unknown probe {kind!r} in {spec!r}; known: {', '.join(GROUPS)}")
    return kind


def probe_group(spec: str) -> str:
    """The group of a probe spec or label: ``far-OOD``, ``near-OOD`` or ``transformed``."""
    return GROUPS[probe_kind(spec)]


def set_group(label: str) -> str:
    """The group of any OOD set in a table: a probe's group, else :data:`NAMED`."""
    return probe_group(label) if label.lower().startswith("probe:") else NAMED


def in_goal(label: str) -> bool:
    """Whether a detector is asked to reject this set (every set but :data:`OUTSIDE_GOAL`)."""
    return not label.lower().startswith("probe:") or probe_kind(label) not in OUTSIDE_GOAL


def protocol(in_spec: str, headline: str | None = None) -> dict[str, list[str]]:
    """The protocol's specs for in-distribution test set ``in_spec``: ``validation`` (choose on
    these), ``held_out`` (``headline`` first when given; report only) and ``reported_only``
    (outside the goal)."""
    if not in_spec or in_spec.lower().startswith("probe:"):
        raise ValueError(
            f"the protocol needs the in-distribution test set's spec (fashion-mnist:test), "
            f"got {in_spec!r}"
        )

    def fill(templates: tuple[str, ...]) -> list[str]:
        return [template.replace("{in}", in_spec) for template in templates]

    return {
        "validation": fill(VALIDATION_PROBES),
        "held_out": ([headline] if headline else []) + fill(HELD_OUT_PROBES),
        "reported_only": fill(REPORTED_ONLY),
    }
