"""results.json validation: every problem named by its path."""

from __future__ import annotations

import math
from typing import Any

import pytest

from genood.report.schema import validate_results


def test_minimal_results_are_valid(results: dict[str, Any]) -> None:
    validate_results(results)
    results["config"] = {"model": {"name": "glow"}}  # extra keys are allowed
    results["figures"] = {"a": "figures/a.png", "b": "figures/sub/b.svg"}
    results["figure_captions"] = {"a": "A caption."}
    validate_results(results)


def _set(obj: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    if value is _DELETE:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("experiment",), _DELETE, "experiment: missing"),
        (("experiment",), "", "experiment: expected a non-empty string"),
        (("created",), "yesterday", "created: expected an ISO 8601 time"),
        (("runtime_s",), -1.0, "runtime_s: expected a number in"),
        (("runtime_s",), math.nan, "runtime_s: expected a finite number"),
        (("num_dims",), 64.0, "num_dims: expected an integer"),
        (("num_dims",), True, "num_dims: expected an integer"),
        (("num_dims",), 0, "num_dims: expected a positive integer"),
        (("ood",), [], "ood: expected at least one"),
        (("ood",), ["svhn:test"], "ood[0]: 'svhn:test' has no row in datasets"),
        (("in_distribution",), "cifar10:test", "in_distribution: 'cifar10:test' has no row"),
        (("datasets", "mnist-10k:test", "n"), 0, "datasets['mnist-10k:test'].n"),
        (("datasets", "mnist-10k:test", "bpd_mean"), "2.0", "datasets['mnist-10k:test'].bpd_mean"),
        (("datasets", "mnist-10k:test", "bpd_std"), _DELETE, ".bpd_std: missing"),
        (("detection", "likelihood", "auroc"), 1.2, "detection['likelihood'].auroc"),
        (("detection", "likelihood", "fpr95"), _DELETE, "detection['likelihood'].fpr95: missing"),
        (("detection", "likelihood", "auroc_ci"), [0.2, 0.1], "auroc_ci: lower bound above"),
        (("claims", 0, "status"), "maybe", "claims[0].status: expected one of"),
        (("claims", 1, "reproduced"), True, "claims[1].reproduced: True contradicts"),
        (("claims", 0, "reproduced"), "yes", "claims[0].reproduced: expected true or false"),
        (("claims", 0, "id"), "claim-1", "claims[0].id: expected an id like 'C1'"),
        (("claims", 1, "id"), "C1", "claims[1].id: duplicate claim id"),
        (("claims", 2, "measured"), _DELETE, "claims[2].measured: missing"),
        (("figures",), {"a": "/tmp/a.png"}, "figures['a']: expected a path relative"),
        (("figures",), {"a": "../a.png"}, "figures['a']: expected a path relative"),
        (("figures",), {"a": "figures/a.pdf"}, "figures['a']: expected a .png or .svg"),
        (("scaled_down",), "all of it", "scaled_down: expected a list"),
        (("analyses",), [], "analyses: expected an object"),
        (("figure_captions",), {"a": 3}, "figure_captions['a']: expected a string"),
    ],
)
def test_problems_are_reported_with_their_path(
    results: dict[str, Any], path: tuple, value: Any, message: str
) -> None:
    _set(results, path, value)
    with pytest.raises(ValueError, match="^results.json: ") as error:
        validate_results(results)
    assert message in str(error.value)


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ValueError, match=r"\(top level\): expected an object"):
        validate_results([])


def test_docs_list_exactly_the_keys_the_schema_names() -> None:
    """docs/results-json.md documents every key of the schema, and no key the schema lacks."""
    import re
    from pathlib import Path

    from genood.report import schema

    text = (Path(__file__).parents[2] / "docs" / "results-json.md").read_text()
    top = text.split("## Top level", 1)[1].split("## Rows", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", top, flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "a key is documented twice"
    named = {*schema.REQUIRED_KEYS, *schema.OPTIONAL_KEYS, *schema.EXTRA_KEYS}
    assert set(documented) == named
    required = set(re.findall(r"^\| `([a-z_]+)` \| yes \|", top, flags=re.MULTILINE))
    assert required == set(schema.REQUIRED_KEYS)
    rows = text.split("## Rows", 1)[1]
    nested = (
        *schema.DATASET_KEYS,
        *schema.OPTIONAL_DATASET_KEYS,
        *schema.DETECTION_METRICS,
        *schema.CLAIM_KEYS,
    )
    for key in nested:
        assert f"`{key}`" in rows, f"docs/results-json.md does not document {key!r}"
    for status in schema.STATUSES:
        assert f"`{status}`" in rows
