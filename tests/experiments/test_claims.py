"""The verdict rules of the seven claims, on hand-made measurements."""

from __future__ import annotations

import pytest

from genood.experiments import claims


def test_phenomenon_needs_lower_ood_bits() -> None:
    assert claims.phenomenon("in", 3.0, "ood", 2.0, 0.1)["reproduced"] is True
    assert claims.phenomenon("in", 2.0, "ood", 3.0, 0.9)["reproduced"] is False


def test_asymmetry_needs_the_reverse_model_to_reject() -> None:
    assert claims.asymmetry("mnist", 1.5, "fashion", 4.0)["reproduced"] is True
    assert claims.asymmetry("mnist", 1.5, "fashion", 1.0)["reproduced"] is False


def test_distribution_term_must_carry_the_gap() -> None:
    assert claims.distribution_term(-1.2, 0.3)["reproduced"] is True
    assert claims.distribution_term(-0.1, 0.3)["reproduced"] is False
    assert claims.distribution_term(0.5, -0.6)["reproduced"] is False


def test_constant_volume_looks_at_the_second_half_of_training() -> None:
    steps = [100, 200, 300, 400]
    assert claims.constant_volume(steps, [3, 3, 3, 3], [3.5, 2, 2, 2])["reproduced"] is True
    assert claims.constant_volume(steps, [3, 3, 3, 3], [2, 2, 2, 3.1])["reproduced"] is False
    assert claims.constant_volume([], [], [])["status"] == "not run at this budget"


def test_second_order_compares_signs() -> None:
    assert claims.second_order(120.0, 80.0, "data")["reproduced"] is True
    assert claims.second_order(-5.0, 80.0, "data")["reproduced"] is False
    assert claims.second_order(0.0, 0.0, "data")["reproduced"] is False


def test_graying_requires_every_grayer_version_lower() -> None:
    assert claims.graying([1.0, 0.5, 0.0], [3.0, 2.0, 1.0])["reproduced"] is True
    assert claims.graying([1.0, 0.5, 0.0], [3.0, 3.5, 1.0])["reproduced"] is False
    # lower than the original everywhere, but rising again as the images gray further
    assert (
        claims.graying([1.0, 0.75, 0.5, 0.25, 0.0], [3.0, 1.0, 1.5, 2.0, 2.5])["reproduced"]
        is False
    )
    with pytest.raises(ValueError, match="must include 1.0"):
        claims.graying([0.5, 0.0], [2.0, 1.0])


def test_not_run_is_never_reproduced() -> None:
    row = claims.not_run("C3")
    assert row["reproduced"] is False and row["status"] == "not run at this budget"


def test_reverse_direction_judges_the_absence_of_the_phenomenon() -> None:
    # MNIST -> FashionMNIST: the paper reports the OOD set *less* likely in this direction.
    expect = False
    c1 = claims.phenomenon("mnist", 2.0, "fashion", 5.7, 0.99, expect)
    assert c1["reproduced"] is True and "no phenomenon" in c1["claim"]
    assert claims.phenomenon("mnist", 3.0, "fashion", 2.0, 0.1, expect)["reproduced"] is False
    # its reverse model (trained on FashionMNIST) must show the phenomenon
    assert claims.asymmetry("fashion", 4.1, "mnist", 3.4, expect)["reproduced"] is True
    assert claims.asymmetry("fashion", 4.1, "mnist", 5.0, expect)["reproduced"] is False
    assert claims.ensembles(3, 3.0, 5.6, 0.99, 0.99, expect)["reproduced"] is True
    assert claims.ensembles(3, 3.0, 2.6, 0.2, 0.2, expect)["reproduced"] is False
    assert claims.distribution_term(2.7, 1.0, expect)["reproduced"] is True
    assert claims.distribution_term(-2.7, 1.0, expect)["reproduced"] is False
    assert claims.distribution_term(0.5, 1.0, expect)["reproduced"] is False
    steps = [100, 200, 300, 400]
    assert claims.constant_volume(steps, [3] * 4, [2, 4, 4, 4], expect)["reproduced"] is True
    assert claims.constant_volume(steps, [3] * 4, [4, 4, 4, 2], expect)["reproduced"] is False
    assert claims.not_run("C3", expect_phenomenon=expect)["claim"] == claims.REVERSE_CLAIMS["C3"]


def test_direction_neutral_claims_keep_their_text() -> None:
    assert claims.claim_text("C6", False) == claims.CLAIMS["C6"]
    assert claims.claim_text("C7", False) == claims.CLAIMS["C7"]
    assert claims.claim_text("C1", True) == claims.CLAIMS["C1"]
