"""The detector registry: specs, needs, help, the docs' table, and a detector in one file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import genood.ood as ood
from genood.ood import registry
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, model_pass

DOCS = Path(__file__).resolve().parents[2] / "docs" / "detectors.md"


def test_the_docs_table_is_the_registry() -> None:
    text = DOCS.read_text()
    found = re.search(r"<!-- scores:start -->\n(.*?)\n<!-- scores:end -->", text, re.S)
    assert found, f"{DOCS} lost its scores:start / scores:end markers"
    assert found.group(1).strip() == registry.score_table(), (
        "docs/detectors.md's score table differs from the registry: paste the output of "
        "python -c 'import genood.ood as o; print(o.registry.score_table())'"
    )


def test_specs_parse_to_constructor_arguments() -> None:
    assert registry.options("complexity") == {"codec": "png"}
    assert registry.options("complexity", codec="webp") == {"codec": "webp"}
    assert registry.options("dos:none:terms") == {"codec": None, "parts": "terms"}
    assert registry.options("llr:2:mode") == {"k": 2, "prior_mode": True}
    assert registry.needs("ratio+waic") == {"model", "background", "ensemble"}
    for bad, message in [
        ("", "no score given"),
        ("likelihood,likelihood", "listed twice"),
        ("typicality+typicality", "lists a score twice"),
        ("nonsense", "unknown score 'nonsense'; known: complexity"),
        ("likelihood:3", "likelihood takes no option"),
        ("complexity:gif", "unknown codec 'gif'"),
    ]:
        with pytest.raises(ValueError, match=message):
            registry.parse(bad)


def test_a_new_detector_is_one_class(model, data) -> None:
    # What a new file in genood/ood/ holds: the class is all the registry needs.
    class BrightPixels(Detector):
        name = "test-bright"
        summary = "share of bright pixels"
        unit = "share"

        def __init__(self, model, *, store: Statistics | None = None) -> None:
            super().__init__(store=store)
            self.model = model

        def requirements(self) -> list[Requirement]:
            return [model_pass(self.model)]

        def _score(self, stats: Stats) -> np.ndarray:
            return -self.stat(stats, "model/bits_per_dim")

    try:
        assert "test-bright" in ood.available()
        assert "test-bright" in registry.help_text()
        assert "`test-bright`" in registry.score_table()
        detector = ood.build("test-bright+likelihood", model)
        detector.fit(data["fit"]).calibrate(data["val"], 0.1)
        assert detector.label == "test-bright+likelihood"
        assert detector.decision_function(data["test"][:5]).shape == (5,)
    finally:
        registry._REGISTRY.pop("test-bright")
    assert "test-bright" not in ood.available()


def test_two_detectors_cannot_share_a_name() -> None:
    with pytest.raises(ValueError, match="two detectors are named 'likelihood'"):

        class Impostor(Detector):
            name = "likelihood"


def test_the_readme_lists_every_score() -> None:
    readme = (DOCS.parents[1] / "README.md").read_text()
    section = readme.split("## Detection scores", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    assert listed == set(ood.available()), (
        "the README's score table and genood.ood.available() differ: "
        f"missing {sorted(set(ood.available()) - listed)}, extra {sorted(listed - set(ood.available()))}"
    )
