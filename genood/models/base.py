"""The likelihood-model contract, and the bits/dim formula stated once.

Every model in genood (flows, PixelCNN, VAEs, ensembles) is a :class:`LikelihoodModel`:

* ``preprocess(images_uint8, dequantize)`` maps 8-bit images ``y in {0..255}^D`` to the model's
  input space. Continuous models see ``x = (y + u) / 256 - 1/2`` with ``u ~ U[0, 1)^D``
  (uniform dequantisation, Theis et al. 2016) or ``u = 1/2`` (the bin midpoint) when
  ``dequantize=False``, for deterministic scoring.
* ``log_prob_terms(x)`` returns named per-sample terms in nats (each ``(B,)``) whose **sum** is
  ``log p(x)`` in the model's input space, or a lower bound on it for latent-variable models.
  For flows the terms are ``log_pz`` (the distribution term) and ``logdet`` (the volume term).
* ``bits_per_dim(images_uint8)`` converts to bits per sub-pixel of the 8-bit data:

      bpd = -(log p(x) + D * log_scale) / (D * log 2)

  with ``log_scale = log(1/256) = -log 256`` for continuous models on the scale above (the
  log-Jacobian per dimension of ``y -> x``, so that the density is over ``[0, 256)^D``), and
  ``log_scale = 0`` for discrete models whose ``log p`` is already a probability mass over the
  256 levels. For a continuous model this is the familiar ``-(log p(x) - D log 256) / (D log 2)``;
  with uniform dequantisation its expectation upper-bounds the discrete model's bits/dim
  (Theis et al. 2016). ``D`` counts every sub-pixel the model sees, padding included. The one
  exception is text (:mod:`genood.models.bytelm`): its samples differ in length, ``D`` is counted
  per sample from the batch (``bits_from_log_prob(log_prob, x)``) and its padding is excluded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

LOG_256 = math.log(256.0)


def bits_per_dim_from_log_prob(
    log_prob: Tensor, num_dims: int | Tensor, log_scale: float
) -> Tensor:
    """Convert per-sample ``log p(x)`` in nats (model space) to bits/dim of 8-bit data.

    Args:
        log_prob: ``(B,)`` log-density (or log-mass) in the model's input space.
        num_dims: ``D``, the number of sub-pixels the model sees (or a ``(B,)`` tensor of
            per-sample counts, for a model of variable-length data such as text).
        log_scale: log-Jacobian per dimension of the map from ``[0, 256)`` pixel values to the
            model's input space (``-log 256`` for ``x = y/256 - 1/2``; ``0`` for discrete models).

    Returns:
        ``-(log_prob + D * log_scale) / (D * log 2)``, shape ``(B,)``.
    """
    return -(log_prob + num_dims * log_scale) / (num_dims * math.log(2.0))


def check_images(images: Tensor, image_shape: tuple[int, int, int], who: str) -> None:
    """Raise a clear error unless ``images`` is a uint8 ``(B, C, H, W)`` batch of ``image_shape``."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{who} expects a torch.uint8 tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(
            f"{who} expects uint8 images with values 0..255, got dtype {images.dtype}; "
            "nothing is rescaled silently: convert with (x * 255).round().to(torch.uint8) "
            "if your floats are in [0, 1]"
        )
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{who} expects images of shape (B, {', '.join(map(str, image_shape))}), got "
            f"{tuple(images.shape)}; pad, resize or convert channels with genood.data.transforms"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{who} got an empty batch")


class LikelihoodModel(nn.Module):
    """Base class of every genood likelihood model.

    Attributes:
        image_shape: ``(C, H, W)`` of the images the model sees.
        log_scale: log-Jacobian per dimension of pixel values -> model space (see module doc).
        is_bound: ``True`` when ``log_prob_terms`` sums to a lower bound (VAEs), so reported
            bits/dim are upper bounds.
    """

    log_scale: float = -LOG_256
    is_bound: bool = False

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape}")
        self.image_shape: tuple[int, int, int] = tuple(int(s) for s in image_shape)  # type: ignore[assignment]

    @property
    def num_dims(self) -> int:
        """``D = C * H * W``, the number of sub-pixels the model sees."""
        c, h, w = self.image_shape
        return c * h * w

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (CPU for a parameter-free model)."""
        for parameter in self.parameters():
            return parameter.device
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    # ----------------------------------------------------------------- the contract
    def preprocess(
        self, images: Tensor, dequantize: bool, generator: torch.Generator | None = None
    ) -> Tensor:
        """uint8 ``(B, C, H, W)`` -> float ``x = (y + u) / 256 - 1/2`` on the model's device.

        Args:
            images: 8-bit images.
            dequantize: add ``u ~ U[0, 1)`` per sub-pixel (training); else ``u = 1/2``.
            generator: optional RNG for the dequantisation noise.
        """
        check_images(images, self.image_shape, f"{type(self).__name__}.preprocess")
        y = images.to(self.device, non_blocking=True).float()
        if dequantize:
            noise_device = generator.device if generator is not None else y.device
            y = y + torch.rand(y.shape, generator=generator, device=noise_device).to(y.device)
        else:
            y = y + 0.5
        return y / 256.0 - 0.5

    def postprocess(self, x: Tensor) -> Tensor:
        """Model space -> uint8 images, the inverse of :meth:`preprocess` up to quantisation."""
        return ((x + 0.5) * 256.0).floor().clamp(0, 255).to(torch.uint8)

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Named per-sample terms in nats, each ``(B,)``, that sum to ``log p(x)``."""
        raise NotImplementedError

    def log_prob_parts(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``(terms, parts)`` from one pass: :meth:`log_prob_terms`, and finer statistics that
        split a term, named ``"<term>.<part>"`` (nats, each ``(B,)``; a term's parts sum to it).

        Detectors that look at more than ``log p(x)`` (density of states) use the parts: a
        multi-scale flow splits its distribution term by level (Schirrmeister et al. 2020 show
        that the levels see different features). The default has no parts.
        """
        return self.log_prob_terms(x), {}

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:  # pragma: no cover
        """Draw ``n`` samples in model space (``temperature`` scales the prior's std)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- derived
    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` in nats, the sum of :meth:`log_prob_terms`, shape ``(B,)``."""
        return sum_terms(self.log_prob_terms(x))

    def bits_from_log_prob(self, log_prob: Tensor, x: Tensor | None = None) -> Tensor:
        """Apply the module-level bits/dim formula with this model's ``D`` and ``log_scale``.

        ``x`` is the preprocessed batch ``log_prob`` came from: image models ignore it (``D`` is
        fixed); a model whose samples differ in size (text, :mod:`genood.models.bytelm`) counts
        each sample's dimensions from it and needs it. Callers pass it whenever they have it.
        """
        return bits_per_dim_from_log_prob(log_prob, self.num_dims, self.log_scale)

    def bits_per_dim(self, images: Tensor, dequantize: bool = False) -> Tensor:
        """Bits per sub-pixel of 8-bit ``images``, shape ``(B,)`` (see module doc for the formula)."""
        x = self.preprocess(images, dequantize=dequantize)
        return self.bits_from_log_prob(self.log_prob(x), x)

    def sample_images(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` samples as uint8 images ``(n, C, H, W)``."""
        return self.postprocess(self.sample(n, temperature))

    def describe(self) -> dict[str, object]:
        """What a table needs to state about the model: name, shape, ``D``, bound or exact."""
        return {
            "model": type(self).__name__,
            "image_shape": list(self.image_shape),
            "num_dims": self.num_dims,
            "bound": self.is_bound,
            "parameters": sum(p.numel() for p in self.parameters()),
        }


def sum_terms(terms: Mapping[str, Tensor]) -> Tensor:
    """Sum named per-sample terms into ``log p(x)``."""
    values = list(terms.values())
    if not values:
        raise ValueError("a likelihood model returned no terms")
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total
