"""The L^{>k} table of a hierarchical VAE: one row per k, reproducible, k = 0 the ELBO."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genood.analysis.hierarchical import bound_table
from genood.models import build


def tiny() -> torch.nn.Module:
    hparams = {"latent_channels": [2, 3, 2], "hidden": 8, "likelihood": "bernoulli"}
    return build("hvae", (1, 8, 8), **hparams).eval()


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 8, 8)).astype(np.uint8)


def test_one_row_per_k_and_k0_is_the_elbo() -> None:
    model = tiny()
    sets = {"in": images(10, 0), "ood": images(6, 1)}
    table = bound_table(model, sets, batch_size=16, seed=3)
    assert table["k"] == [0, 1, 2] and table["prior_mode"] and table["unit"] == "nats"
    assert table["sets"]["ood"]["n"] == 6 and len(table["sets"]["in"]["mean"]) == 3
    assert table == bound_table(model, sets, batch_size=16, seed=3)  # reproducible
    x = model.preprocess(torch.from_numpy(sets["in"]), dequantize=False)
    torch.manual_seed(3)
    with torch.no_grad():
        elbo = model.bound_above(x, 0, 1, True)  # the first draw after the seed
    assert table["sets"]["in"]["mean"][0] == pytest.approx(float(elbo.double().mean()))
    assert all(np.isfinite(table["sets"][s]["std"]).all() for s in sets)


def test_refuses_a_model_without_hierarchical_bounds() -> None:
    with pytest.raises(TypeError, match="hierarchical VAE"):
        bound_table(build("vae", (1, 8, 8), hidden=8), {"in": images(2, 0)})
