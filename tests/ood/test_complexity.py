"""Serra et al.'s input-complexity score and the lossless codecs behind it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from genood.ood import InputComplexity, Likelihood, available_codecs, compressed_bits
from genood.ood.complexity import CODECS, _to_codec_layout, decode

from .conftest import check_detector, make_blobs, needs_imagecodecs


@pytest.mark.parametrize("codec", available_codecs())
def test_codecs_are_lossless_and_rank_complexity(codec: str) -> None:
    images = np.concatenate(
        [
            np.full((3, 1, 16, 16), 40, np.uint8),
            make_blobs(3, seed=0, shape=(1, 16, 16)),
            np.random.default_rng(0).integers(0, 256, (3, 1, 16, 16), dtype=np.uint8),
        ]
    )
    for image in images:
        encoded = CODECS[codec](_to_codec_layout(image))
        decoded = decode(encoded, codec)
        if decoded.ndim == 3 and image.shape[0] == 1:
            decoded = decoded[..., 0]  # WebP decodes a grey image as RGB
        assert np.array_equal(decoded, _to_codec_layout(image)), codec
    bits = compressed_bits(images, codec).reshape(3, 3).mean(axis=1)
    assert bits[0] < bits[1] < bits[2]  # constant < blobs < noise


@needs_imagecodecs
def test_png_and_stronger_codecs_are_available() -> None:
    assert available_codecs() == ["jpeg2000", "jpegxl", "png", "webp"]


def test_a_missing_codec_library_names_the_extra(model, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # as if it were not installed
    assert available_codecs() == ["png"]
    with pytest.raises(RuntimeError, match=r"pip install 'genood\[codecs\]'"):
        InputComplexity(model, codec="jpegxl")
    with pytest.raises(RuntimeError, match="genood"):
        compressed_bits(np.zeros((1, 1, 8, 8), np.uint8), "webp")


def test_rgb_images_are_compressed(tmp_path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    assert (compressed_bits(rgb, "png") > 3 * 64 * 6).all()
    with pytest.raises(ValueError, match="1- or 3-channel"):
        compressed_bits(np.zeros((1, 2, 8, 8), np.uint8), "png")


def test_threads_give_the_same_lengths(data) -> None:
    one = compressed_bits(data["test"][:100], "png")
    assert np.array_equal(one, compressed_bits(data["test"][:100], "png", workers=2))


@pytest.mark.parametrize("codec", ["png", pytest.param("jpegxl", marks=needs_imagecodecs)])
def test_score_is_model_bits_minus_codec_bits(model, data, codec: str) -> None:
    detector = InputComplexity(model, codec=codec).fit(data["fit"])
    images = data["test"][:40]
    model_bits = Likelihood(model).fit(data["fit"]).decision_function(images)
    codec_bits = compressed_bits(images, codec) / 64  # D = 1 x 8 x 8
    np.testing.assert_allclose(detector.decision_function(images), model_bits - codec_bits)


def test_detects_and_meets_its_fpr(model, data) -> None:
    check_detector(InputComplexity(model, codec="png"), data, ood=("noise", "constant"))


def test_unknown_codec_is_refused(model) -> None:
    with pytest.raises(ValueError, match="known: jpeg2000, jpegxl, png, webp"):
        InputComplexity(model, codec="gif")
