"""Generated OOD probe sets (``probe:KIND``) and transformed in-distribution sets."""

from __future__ import annotations

import numpy as np
import pytest

from genood.data import load, parse_spec
from genood.data.glyphs import STROKES
from genood.data.probes import KINDS, TRANSFORMS, load_probe

GENERATED = ["noise", "constant", "letters", "uci-digits", *(f"font-digits:{w}" for w in STROKES)]


@pytest.mark.parametrize("kind", GENERATED)
def test_generated_probes_are_uint8_seeded_and_shaped(kind: str) -> None:
    first = load(f"probe:{kind}", limit=64)
    again = load(f"probe:{kind}", limit=64)
    assert first.images.shape == (64, 1, 28, 28) and first.images.dtype == np.uint8
    np.testing.assert_array_equal(first.images, again.images)
    assert (first.labels == -1).all() and first.spec == f"probe:{kind}"
    np.testing.assert_array_equal(load(f"probe:{kind}", limit=8).images, first.images[:8])
    rgb = load(f"probe:{kind}:3x32x32", limit=4)
    assert rgb.images.shape == (4, 3, 32, 32) and rgb.spec == f"probe:{kind}:3x32x32"
    if kind != "noise":  # gray glyphs and levels, repeated over the channels
        np.testing.assert_array_equal(rgb.images[:, 0], rgb.images[:, 2])


def test_probe_contents() -> None:
    constant = load("probe:constant", limit=200).images
    assert (constant.reshape(200, -1).std(axis=1) == 0).all() and constant.std() > 50
    noise = load("probe:noise", limit=200).images
    assert noise.min() == 0 and noise.max() == 255 and abs(noise.mean() - 127.5) < 2
    for kind in ("letters", "uci-digits", "font-digits:thin", "font-digits:bold"):
        glyphs = load(f"probe:{kind}", limit=200).images[:, 0]
        # white strokes on black, inside MNIST's 20x20 box and 4-pixel border (+-2 jitter)
        assert glyphs.max() == 255 and (glyphs[:, :2].max(), glyphs[:, :, :2].max()) == (0, 0)
        assert 0.05 < (glyphs > 127).mean() < 0.4
    assert len(load("probe:uci-digits").images) == 1797
    assert len(load("probe:letters").images) == 2000


def test_font_digit_weights_share_their_draws_and_differ_in_ink() -> None:
    sets = {w: load(f"probe:font-digits:{w}", limit=100).images.astype(float) for w in STROKES}
    ink = {w: (images > 127).mean() for w, images in sets.items()}
    assert ink["thin"] < ink["regular"] < ink["bold"], ink
    assert ink["bold"] > 1.5 * ink["thin"], ink
    # the same digit at the same angle and place: the bold strokes cover the thin ones
    thin, bold = sets["thin"] > 127, sets["bold"] > 127
    assert (thin & bold).sum() > 0.9 * thin.sum()


def _source(tmp_path) -> tuple[str, np.ndarray, np.ndarray]:
    """A tiny non-square, non-symmetric npz set with labels, as a spec."""
    images = np.arange(3 * 3 * 6 * 4, dtype=np.uint8).reshape(3, 3, 6, 4)
    labels = np.array([4, 0, 7])
    np.savez(tmp_path / "x.npz", images=images, labels=labels)
    return f"npz:{tmp_path / 'x.npz'}", images, labels


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("inverted", lambda x: 255 - x),
        ("vflip", lambda x: x[:, :, ::-1, :]),
        ("hflip", lambda x: x[:, :, :, ::-1]),
        ("rot90", lambda x: np.stack([np.stack([np.rot90(c) for c in im]) for im in x])),
    ],
)
def test_transformed_probes_are_exact_transforms(tmp_path, kind, expected) -> None:
    spec, images, labels = _source(tmp_path)
    probe = load(f"probe:{kind}:{spec}")
    np.testing.assert_array_equal(probe.images, expected(images))
    np.testing.assert_array_equal(probe.labels, labels)
    assert probe.spec == f"probe:{kind}:{spec}" and probe.images.flags.c_contiguous
    assert parse_spec(f"probe:{kind}:mnist:test") == ("probe", f"{kind}:mnist:test")


def test_rot90_turns_counter_clockwise_and_swaps_sides(tmp_path) -> None:
    spec, images, _ = _source(tmp_path)
    turned = load(f"probe:rot90:{spec}").images
    assert turned.shape == (3, 3, 4, 6)
    # counter-clockwise: the top-right pixel goes to the top-left corner
    assert turned[0, 0, 0, 0] == images[0, 0, 0, -1]
    # four turns give the set back; two are a vertical and a horizontal flip
    np.testing.assert_array_equal(np.rot90(turned, k=3, axes=(2, 3)), images)
    np.testing.assert_array_equal(np.rot90(turned, k=1, axes=(2, 3)), images[:, :, ::-1, ::-1])


def test_bad_probe_specs_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown probe 'chicken'"):
        load_probe("chicken")
    with pytest.raises(ValueError, match="probe shape looks like"):
        load("probe:noise:28x28")
    for kind in TRANSFORMS:
        with pytest.raises(ValueError, match=f"probe:{kind}:SPEC"):
            load(f"probe:{kind}")
    with pytest.raises(ValueError, match="needs a kind"):
        load("probe:")
    # font digits need a stroke weight before the shape; the message shows the grammar
    for bad in ("probe:font-digits", "probe:font-digits:1x28x28", "probe:font-digits:heavy"):
        with pytest.raises(ValueError, match=r"needs a weight first.*probe:font-digits:thin"):
            load(bad)
    with pytest.raises(ValueError, match="probe shape looks like"):
        load("probe:font-digits:bold:bold")
    assert {"inverted", "vflip", "rot90", "hflip", "font-digits"} <= set(KINDS)
