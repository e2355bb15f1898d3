"""Generated OOD probe sets (``probe:KIND``)."""

from __future__ import annotations

import numpy as np
import pytest

from genood.data import load, parse_spec
from genood.data.probes import KINDS, load_probe


@pytest.mark.parametrize("kind", ["noise", "constant", "letters", "uci-digits"])
def test_generated_probes_are_uint8_seeded_and_shaped(kind: str) -> None:
    first = load(f"probe:{kind}", limit=64)
    again = load(f"probe:{kind}", limit=64)
    assert first.images.shape == (64, 1, 28, 28) and first.images.dtype == np.uint8
    np.testing.assert_array_equal(first.images, again.images)
    assert (first.labels == -1).all() and first.spec == f"probe:{kind}"
    np.testing.assert_array_equal(load(f"probe:{kind}", limit=8).images, first.images[:8])
    rgb = load(f"probe:{kind}:3x32x32", limit=4)
    assert rgb.images.shape == (4, 3, 32, 32)
    if kind != "noise":  # gray glyphs and levels, repeated over the channels
        np.testing.assert_array_equal(rgb.images[:, 0], rgb.images[:, 2])


def test_probe_contents() -> None:
    constant = load("probe:constant", limit=200).images
    assert (constant.reshape(200, -1).std(axis=1) == 0).all() and constant.std() > 50
    noise = load("probe:noise", limit=200).images
    assert noise.min() == 0 and noise.max() == 255 and abs(noise.mean() - 127.5) < 2
    for kind in ("letters", "uci-digits"):
        glyphs = load(f"probe:{kind}", limit=200).images[:, 0]
        # white strokes on black, inside MNIST's 20x20 box and 4-pixel border (+-2 jitter)
        assert glyphs.max() == 255 and (glyphs[:, :2].max(), glyphs[:, :, :2].max()) == (0, 0)
        assert 0.05 < (glyphs > 127).mean() < 0.4
    assert len(load("probe:uci-digits").images) == 1797
    assert len(load("probe:letters").images) == 2000


def test_inverted_probe(tmp_path) -> None:
    images = np.arange(2 * 64, dtype=np.uint8).reshape(2, 1, 8, 8)
    np.savez(tmp_path / "x.npz", images=images)
    inverted = load(f"probe:inverted:npz:{tmp_path / 'x.npz'}")
    np.testing.assert_array_equal(inverted.images, 255 - images)
    assert inverted.spec == f"probe:inverted:npz:{tmp_path / 'x.npz'}"
    assert parse_spec("probe:inverted:mnist:test") == ("probe", "inverted:mnist:test")


def test_bad_probe_specs_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown probe 'chicken'"):
        load_probe("chicken")
    with pytest.raises(ValueError, match="probe shape looks like"):
        load("probe:noise:28x28")
    with pytest.raises(ValueError, match="needs a data set"):
        load("probe:inverted")
    with pytest.raises(ValueError, match="needs a kind"):
        load("probe:")
    assert "inverted" in KINDS
