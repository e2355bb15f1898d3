"""Binarisation: dynamic draws are fresh per use, scoring draws are fixed per image."""

from __future__ import annotations

import pytest
import torch

from genood.data.binarize import binarize_dynamic, binarize_fixed, image_seed
from genood.data.transforms import Preprocessing


def gray(n: int, value: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if value is not None:
        return torch.full((n, 1, 28, 28), value, dtype=torch.uint8)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("draw", ["dynamic", "fixed"])
def test_draws_are_bernoulli_of_the_intensity(draw: str) -> None:
    def binarize(images: torch.Tensor) -> torch.Tensor:
        if draw == "dynamic":
            return binarize_dynamic(images, torch.Generator().manual_seed(1))
        return binarize_fixed(images)

    assert binarize(gray(2, 0)).sum() == 0 and bool((binarize(gray(2, 255)) == 1).all())
    images = torch.cat([gray(1, 64), gray(1, 191)])  # fixed draws differ per image only
    ones = torch.cat([binarize(images + torch.zeros_like(images)) for _ in range(20)])
    assert set(ones.unique().tolist()) <= {0.0, 1.0} and ones.dtype == torch.float32
    for value, share in ((64, ones[0::2].mean()), (191, ones[1::2].mean())):
        assert abs(float(share) - value / 255) < 0.05


def test_dynamic_draws_are_fresh_per_use_and_reproducible_per_seed() -> None:
    images = gray(8)
    first = binarize_dynamic(images, torch.Generator().manual_seed(3))
    again = binarize_dynamic(images, torch.Generator().manual_seed(3))
    other = binarize_dynamic(images, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_fixed_draws_depend_on_the_image_only() -> None:
    images = gray(6)
    whole = binarize_fixed(images)
    assert torch.equal(whole, binarize_fixed(images))
    alone = torch.cat([binarize_fixed(images[i : i + 1]) for i in reversed(range(6))])
    assert torch.equal(whole, alone.flip(0))
    assert not torch.equal(whole[0], binarize_fixed(gray(1, seed=9))[0])
    assert image_seed(images[0].numpy()) != image_seed(images[1].numpy())


def test_binarisation_needs_uint8() -> None:
    with pytest.raises(TypeError, match="uint8"):
        binarize_fixed(gray(1).float())


def test_preprocessing_records_binarisation_without_applying_it() -> None:
    p = Preprocessing(binarize="dynamic")
    assert p.to_dict()["binarize"] == "dynamic" and Preprocessing.from_dict(p.to_dict()) == p
    assert "binarize" not in Preprocessing().to_dict() and p.cli_flags() == ""
    images = gray(2).numpy()
    assert (p.apply(images) == images).all()
    with pytest.raises(ValueError, match="binarize must be one of"):
        Preprocessing(binarize="static")
