"""Serra et al. (2020): correct the likelihood for input complexity with a lossless codec.

Serra, Alvarez, Gomez, Slizovskaia, Nunez & Luque, "Input complexity and out-of-distribution
detection with likelihood-based generative models" (ICLR 2020). Simple inputs get high
likelihood under any model; a generic lossless compressor measures that simplicity, ``L(x)``
bits, and the score compares the model's code length with the compressor's:

    S(x) = bpd(x) - L(x) / D,

both in bits per sub-pixel (Serra et al. write it as ``-log2 p(x) - L(x)``; dividing by ``D``
changes nothing but the unit). Higher ``S`` = the model explains ``x`` worse than a generic
compressor does = more anomalous. The codec compresses *exactly the uint8 array the model sees*
(padding included when the run pads 28x28 images to 32x32), and ``D`` counts the same
sub-pixels as the model's bits/dim. ``L(x)`` is the whole encoded file, header included; a
constant header shifts every score alike.

Codecs (``codec=``): ``png`` (Pillow, maximum compression; always available) and, from
``imagecodecs`` (``pip install genood[codecs]``), ``jpegxl`` (lossless JPEG XL, whose modular
mode descends from FLIF, Serra et al.'s best codec), ``webp`` (lossless WebP) and
``jpeg2000`` (reversible JPEG 2000).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, codec_length, model_pass

Encoder = Callable[[np.ndarray], bytes]


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True, compress_level=9)
    return buffer.getvalue()


def _imagecodecs() -> Any:
    try:
        import imagecodecs
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "this codec needs the imagecodecs package: pip install 'genood[codecs]'"
        ) from error
    return imagecodecs


def _jpegxl(image: np.ndarray) -> bytes:
    # effort 7 (libjxl's default) is within 1% of effort 9's length at a third of the time
    return bytes(_imagecodecs().jpegxl_encode(image, lossless=True, effort=7))


def _webp(image: np.ndarray) -> bytes:
    # WebP stores RGB(A) only: a grey image goes in as three equal planes, which lossless WebP's
    # subtract-green transform codes almost for free; bits are still counted over the grey D.
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
    return bytes(_imagecodecs().webp_encode(rgb, lossless=True, level=100))


def _jpeg2000(image: np.ndarray) -> bytes:
    return bytes(_imagecodecs().jpeg2k_encode(image, level=0, reversible=True))


CODECS: dict[str, Encoder] = {"png": _png, "jpegxl": _jpegxl, "webp": _webp, "jpeg2000": _jpeg2000}
_DECODERS = {"jpegxl": "jpegxl_decode", "webp": "webp_decode", "jpeg2000": "jpeg2k_decode"}


def check_codec(codec: str) -> None:
    """Raise unless ``codec`` is known and usable here (naming the pip extra when it is not)."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; known: {', '.join(sorted(CODECS))}")
    if codec != "png":
        _imagecodecs()  # fail now, with the pip extra, not at scoring time


def available_codecs() -> list[str]:
    """Codec names usable here (``png`` always; the others when imagecodecs imports)."""
    try:
        _imagecodecs()
    except RuntimeError:
        return ["png"]
    return sorted(CODECS)


def _to_codec_layout(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W)`` for grey, ``(H, W, C)`` for RGB."""
    channels = image.shape[0]
    if channels == 1:
        return np.ascontiguousarray(image[0])
    if channels == 3:
        return np.ascontiguousarray(image.transpose(1, 2, 0))
    raise ValueError(f"lossless codecs take 1- or 3-channel images, got {channels} channels")


def compressed_bits(
    images: np.ndarray, codec: str = "png", workers: int = 1, progress: bool = False
) -> np.ndarray:
    """``L(x)``: the length in bits of each uint8 ``(N, C, H, W)`` image compressed losslessly.

    Args:
        images: uint8 images, channels first.
        codec: one of :data:`CODECS`.
        workers: threads (the codecs release the GIL).
        progress: show a tqdm bar.
    """
    check_codec(codec)
    encode = CODECS[codec]

    def length(image: np.ndarray) -> int:
        return 8 * len(encode(_to_codec_layout(image)))

    bar = tqdm(total=len(images), desc=f"compressing ({codec})", disable=not progress)
    with bar:
        if workers <= 1:
            bits = []
            for image in images:
                bits.append(length(image))
                bar.update()
        else:
            with ThreadPoolExecutor(workers) as pool:
                bits = []
                for value in pool.map(length, images, chunksize=64):
                    bits.append(value)
                    bar.update()
    return np.asarray(bits, dtype=np.float64)


def decode(data: bytes, codec: str) -> np.ndarray:
    """Decode one image written by ``codec`` (for checking that codecs are lossless)."""
    if codec == "png":
        return np.asarray(Image.open(io.BytesIO(data)))
    return np.asarray(getattr(_imagecodecs(), _DECODERS[codec])(data))


class InputComplexity(Detector):
    """Score ``S(x) = bpd(x) - L(x) / D`` with ``L`` from a lossless ``codec``."""

    name = "complexity"
    summary = (
        "bits/dim minus a lossless codec's bits/dim (Serra et al. 2020); CODEC in "
        + ", ".join(sorted(CODECS))
    )
    grammar = "complexity[:CODEC]"
    unit = "bits/dim"

    def __init__(
        self, model: LikelihoodModel, codec: str = "png", *, store: Statistics | None = None
    ) -> None:
        super().__init__(store=store)
        check_codec(codec)
        _to_codec_layout(np.zeros(model.image_shape, dtype=np.uint8))
        self.model = model
        self.codec = codec

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        if len(options) > 1:
            raise ValueError(
                f"complexity takes complexity:CODEC, got {':'.join([cls.name, *options])}"
            )
        chosen = options[0] if options else codec
        if chosen not in CODECS:
            raise ValueError(f"unknown codec {chosen!r}; known: {', '.join(sorted(CODECS))}")
        return {"codec": chosen}

    def requirements(self) -> list[Requirement]:
        return [model_pass(self.model), codec_length(self.codec)]

    def complexity_bits_per_dim(self, X: Any) -> np.ndarray:
        """``L(x) / D``, the codec's bits per sub-pixel of each image."""
        return self.stat(self._stats(X), f"codec/{self.codec}") / self.model.num_dims

    def _score(self, stats: Stats) -> np.ndarray:
        return self.stat(stats, "model/bits_per_dim") - self.complexity_bits_per_dim(stats)
