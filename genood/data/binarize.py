"""Stochastic binarisation of 8-bit gray images, as Havtorn et al. (2021) train on FashionMNIST.

Each sub-pixel ``y in {0..255}`` becomes ``b ~ Bernoulli(y / 255)`` (torchvision's
``ToTensor`` then ``torch.bernoulli`` in JakobHavtorn/hvae-oodd,
``oodd/datasets/torchvision_datasets.py``, ``TRANSFORM_BINARIZE``). Two ways to draw it:

* :func:`binarize_dynamic` (training): a fresh draw every time an image is used, from the
  caller's generator (the trainer's per-step generator, so a run stays reproducible). This is
  what "dynamic binarisation" means. The authors' code does *not* do it for its documented
  command: with ``"dynamic": true`` their dataset memoises ``__getitem__``, so each training
  image keeps the draw it got in each of the 2 persistent data-loader workers (about 2 fixed
  binarisations per image). genood follows the help text, not the memoisation.
* :func:`binarize_fixed` (scoring): one draw per image whose uniforms are seeded by a hash of
  the image's own bytes, so an image always gets the same binarisation, whatever batch, order,
  set or device it comes in. The authors evaluate with one unseeded draw per image and pass
  (``"dynamic": false``, no memoisation): the same distribution, but not reproducible.

Both return float ``{0, 1}`` tensors of the input's shape on the input's device.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor

BINARIZATIONS = ("", "dynamic")
"""``[data] binarize`` values: none, or a fresh Bernoulli draw per training use."""

_KEY = b"genood-binarize"


def _check(images: Tensor) -> None:
    if images.dtype != torch.uint8:
        raise TypeError(
            f"binarisation draws Bernoulli(y / 255) from uint8 images, got dtype {images.dtype}"
        )


def binarize_dynamic(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A fresh ``Bernoulli(y / 255)`` draw per sub-pixel of uint8 ``images``, from ``generator``."""
    _check(images)
    device = generator.device if generator is not None else images.device
    u = torch.rand(images.shape, generator=generator, device=device).to(images.device)
    return (u < images.float() / 255.0).float()


def image_seed(image: np.ndarray) -> int:
    """The seed of one image's fixed binarisation: a keyed BLAKE2b hash of its bytes (63 bits)."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8, key=_KEY)
    return int.from_bytes(digest.digest(), "little") & (2**63 - 1)


def binarize_fixed(images: Tensor) -> Tensor:
    """The deterministic ``Bernoulli(y / 255)`` draw of every image (see the module docstring)."""
    _check(images)
    host = images.detach().cpu().numpy()
    generator = torch.Generator()
    u = torch.empty(images.shape, dtype=torch.float32)
    for i, image in enumerate(host):
        generator.manual_seed(image_seed(image))
        u[i] = torch.rand(image.shape, generator=generator)
    return (u.to(images.device) < images.float() / 255.0).float()


__all__ = ["BINARIZATIONS", "binarize_dynamic", "binarize_fixed", "image_seed"]
