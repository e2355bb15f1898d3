"""The text measurements and the verdict rule of L1, on hand-made numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genood.data.text import encode
from genood.experiments.text_claims import (
    compressor_bits,
    deflate_bits,
    detection,
    l1_verdict,
    lzma_bits,
)


def direction(bpc: dict[str, float], zlib: dict[str, float], auroc: dict[str, float]) -> Any:
    labels = list(bpc)
    return {
        "in_train": "text:en:train",
        "in_test": labels[0],
        "ood": labels[1:],
        "sets": {k: {"bpc": bpc[k], "zlib_bpc": zlib[k]} for k in labels},
        "detection": {k: {"likelihood": {"auroc": auroc[k]}} for k in labels[1:]},
    }


def test_l1_is_reproduced_only_when_a_simpler_set_is_more_likely() -> None:
    bpc = {"en": 2.5, "de": 4.0, "word": 1.0}
    zlib = {"en": 7.0, "de": 7.2, "word": 2.0}
    forward = direction(bpc, zlib, {"de": 0.95, "word": 0.1})
    row = l1_verdict(forward, None)
    assert row["reproduced"] and row["status"] == "reproduced"
    assert "Simpler and more likely: word 1.000 bits/char (AUROC 0.100)" in row["measured"]

    harder = direction({**bpc, "word": 3.0}, zlib, {"de": 0.95, "word": 0.8})
    assert not l1_verdict(harder, None)["reproduced"]
    # more likely but not simpler (e.g. another language the model happens to like): not L1
    not_simpler = direction({**bpc, "de": 2.0}, {**zlib, "word": 7.5}, {"de": 0.3, "word": 0.9})
    row = l1_verdict(not_simpler, forward)
    assert not row["reproduced"]
    assert "More likely without being simpler: de" in row["measured"]
    assert (
        "Reverse (trained on text:en:train): more likely than its test set: word" in row["measured"]
    )


def test_a_mean_below_is_not_enough_without_an_auroc_below_one_half() -> None:
    forward = direction({"en": 2.5, "word": 2.4}, {"en": 7.0, "word": 2.0}, {"word": 0.6})
    assert not l1_verdict(forward, None)["reproduced"]


def test_compressors_rank_repetition_below_prose() -> None:
    prose = b"Whenever you find yourself on the side of the majority, it is time to pause."
    assert deflate_bits(b"a" * len(prose)) < deflate_bits(prose)
    assert lzma_bits(b"a" * len(prose)) < lzma_bits(prose)
    packed = compressor_bits(encode([prose.decode(), "x" * 60]))
    assert packed["zlib"][1] < packed["zlib"][0] and packed["lzma"].shape == (2,)


def test_detection_scores_and_their_direction() -> None:
    rng = np.random.default_rng(0)
    n = 50
    typical = 2.5
    in_sample = {"bpc": rng.normal(2.5, 0.2, n), "zlib_bpc": rng.normal(7, 0.2, n)}
    in_sample["lzma_bpc"] = in_sample["zlib_bpc"]
    simple = {"bpc": rng.normal(1.0, 0.2, n), "zlib_bpc": rng.normal(2, 0.2, n)}
    simple["lzma_bpc"] = simple["zlib_bpc"]
    rows = detection(in_sample, simple, typical, bootstrap=20)
    assert rows["likelihood"]["auroc"] < 0.05  # the likelihood prefers the simple set
    assert rows["typicality"]["auroc"] > 0.95  # too likely is atypical too
    assert rows["complexity"]["auroc"] > 0.95  # simple: 1 - 2 = -1, above 2.5 - 7 = -4.5
    assert rows["likelihood"]["low"] <= rows["likelihood"]["auroc"] <= rows["likelihood"]["high"]
    assert detection(in_sample, simple, typical, bootstrap=0)["complexity"].keys() == {"auroc"}


@pytest.mark.parametrize("bad", [{}, {"in_train": "x"}])
def test_the_text_report_refuses_incomplete_results(bad: dict) -> None:
    from genood.report.text import validate_text_results

    with pytest.raises(ValueError, match="lacks"):
        validate_text_results(bad)
