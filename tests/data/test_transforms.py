"""Preprocessing: padding as openai/glow pads MNIST, channel conversion, resizing, shape fitting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genood.data.transforms import Preprocessing, fit_to, require_shape


@pytest.fixture
def gray() -> np.ndarray:
    return np.random.default_rng(0).integers(1, 256, (3, 1, 28, 28), dtype=np.uint8)


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)


def test_pad_28_to_32_is_centred_zeros(gray):
    out = Preprocessing(pad_to=32).apply(gray)
    assert out.shape == (3, 1, 32, 32) and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 2:30, 2:30], gray)  # glow: np.pad(x, ((0,0),(2,2),(2,2)))
    out[:, :, 2:30, 2:30] = 0
    assert not out.any()


def test_odd_padding_puts_the_extra_pixel_bottom_right(gray):
    out = Preprocessing(pad_to=31).apply(gray)
    assert np.array_equal(out[:, :, 1:29, 1:29], gray)


def test_channels(gray, rgb):
    three = Preprocessing(channels=3).apply(gray)
    assert three.shape == (3, 3, 28, 28) and all(
        np.array_equal(three[:, c], gray[:, 0]) for c in range(3)
    )
    one = Preprocessing(channels=1).apply(rgb)
    r, g, b = (rgb[:, c].astype(np.float64) for c in range(3))
    assert np.array_equal(one[:, 0], np.rint(0.299 * r + 0.587 * g + 0.114 * b).astype(np.uint8))
    pure = np.zeros((1, 3, 1, 3), np.uint8)
    pure[0, 0, 0, 0], pure[0, 1, 0, 1], pure[0, 2, 0, 2] = 255, 255, 255
    assert Preprocessing(channels=1).apply(pure).ravel().tolist() == [76, 150, 29]


def test_resize_is_pillow_bilinear(rgb):
    out = Preprocessing(resize=5).apply(rgb)
    want = np.asarray(Image.fromarray(rgb[2].transpose(1, 2, 0)).resize((5, 5), Image.BILINEAR))
    assert out.shape == (4, 3, 5, 5) and np.array_equal(out[2], want.transpose(2, 0, 1))


def test_order_and_input_untouched(gray):
    before = gray.copy()
    out = Preprocessing(pad_to=32, channels=3, resize=30).apply(gray)
    assert out.shape == (3, 3, 32, 32) and np.array_equal(gray, before)
    assert Preprocessing().apply(gray) is not gray


def test_output_shape_dict_identity():
    p = Preprocessing(pad_to=32, channels=3)
    assert p.output_shape((1, 28, 28)) == (3, 32, 32)
    assert Preprocessing.from_dict(p.to_dict()) == p and p.to_dict() == {
        "pad_to": 32,
        "channels": 3,
        "resize": 0,
    }
    assert Preprocessing().is_identity and not p.is_identity
    assert p.cli_flags() == "--pad-to 32 --channels 3"


def test_invalid_options():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        Preprocessing(channels=2)
    with pytest.raises(ValueError, match="pad_to must be an integer >= 0"):
        Preprocessing(pad_to=-1)
    with pytest.raises(ValueError, match=r"cannot pad 32x32 images to 28x28.*use --resize 28"):
        Preprocessing(pad_to=28).output_shape((3, 32, 32))
    with pytest.raises(ValueError, match="unknown preprocessing option"):
        Preprocessing.from_dict({"pad": 3})
    with pytest.raises(ValueError, match="expected uint8"):
        Preprocessing(pad_to=32).apply(np.zeros((1, 1, 28, 28), np.float32))


@pytest.mark.parametrize(
    ("shape_in", "target", "expected"),
    [
        ((1, 28, 28), (1, 32, 32), Preprocessing(pad_to=32)),
        ((1, 28, 28), (3, 32, 32), Preprocessing(pad_to=32, channels=3)),
        ((3, 32, 32), (1, 28, 28), Preprocessing(channels=1, resize=28)),
        ((3, 64, 64), (3, 32, 32), Preprocessing(resize=32)),
        ((3, 32, 32), (3, 32, 32), Preprocessing()),
    ],
)
def test_fit_to(shape_in, target, expected):
    fix = fit_to(shape_in, target)
    assert fix == expected and fix.output_shape(shape_in) == target


def test_fit_to_impossible():
    with pytest.raises(
        ValueError, match=r"images are 4x32x32, the model expects 3x32x32: only 1 <-> 3"
    ):
        fit_to((4, 32, 32), (3, 32, 32))


def test_require_shape_says_which_option_fixes_it():
    with pytest.raises(ValueError) as caught:
        require_shape((1, 28, 28), (1, 32, 32))
    assert str(caught.value).startswith(
        "images are 1x28x28, the model expects 1x32x32: use --pad-to 32"
    )
    with pytest.raises(
        ValueError,
        match=r"images are 3x32x32 \(with --resize 16\), .* use --channels 1 --resize 28",
    ):
        require_shape((3, 32, 32), (1, 28, 28), Preprocessing(resize=16))
    require_shape((1, 28, 28), (3, 32, 32), Preprocessing(pad_to=32, channels=3))
