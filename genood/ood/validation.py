"""Checks at the detectors' door: the images they take and the model they were fitted with.

Inputs are validated, never rescaled: uint8 ``(N, C, H, W)`` in the model's image shape. A
fitted detector remembers a fingerprint of its models' weights, so that loading it against
another model is refused instead of silently scoring with the wrong one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch


def validate_images(images: Any, image_shape: tuple[int, int, int], who: str) -> np.ndarray:
    """Return ``images`` as a uint8 ``(N, C, H, W)`` numpy array, or raise a clear error.

    Accepts numpy arrays and torch tensors. Nothing is rescaled or cast: a float array is an
    error (with its value range, and a note when it holds NaN), so are other integer types, a
    single image without its batch axis, channels-last layouts and empty batches.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"{who} expects a uint8 numpy array (N, C, H, W), got {type(images).__name__}"
        )
    expected = f"(N, {', '.join(map(str, image_shape))})"
    if images.dtype != np.uint8:
        if images.size and np.issubdtype(images.dtype, np.floating):
            nan = int(np.isnan(images).sum())
            finite = images[np.isfinite(images)]
            span = f"[{finite.min():g}, {finite.max():g}]" if finite.size else "none finite"
            detail = f"values {span}" + (f", {nan} NaN" if nan else "")
            raise TypeError(
                f"{who} expects uint8 images with values 0..255, got {images.dtype} ({detail}); "
                "nothing is rescaled silently: if your floats are in [0, 1] convert with "
                "(x * 255).round().astype(np.uint8)"
            )
        if images.size and np.issubdtype(images.dtype, np.integer):
            raise TypeError(
                f"{who} expects uint8 images with values 0..255, got {images.dtype} "
                f"(values [{images.min()}, {images.max()}]); convert explicitly with "
                "images.astype(np.uint8) if they are 8-bit"
            )
        raise TypeError(f"{who} expects uint8 images with values 0..255, got {images.dtype}")
    if images.ndim == 3 and tuple(images.shape) == tuple(image_shape):
        raise ValueError(
            f"{who} expects a batch {expected}, got a single image {images.shape}; use images[None]"
        )
    channels_last = (*image_shape[1:], image_shape[0])
    # channels-last is recognisable only when C differs from H
    if images.ndim == 4 and images.shape[1:] == channels_last and image_shape[0] != image_shape[1]:
        raise ValueError(
            f"{who} expects channels-first images {expected}, got {images.shape} "
            "(channels last?); use images.transpose(0, 3, 1, 2)"
        )
    if images.ndim == 3 and image_shape[0] == 1 and tuple(images.shape[1:]) == image_shape[1:]:
        raise ValueError(
            f"{who} expects {expected}, got {images.shape} without a channel axis; "
            "use images[:, None]"
        )
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{who} expects images of shape {expected}, got {images.shape}; pad, resize or "
            "convert channels with genood.data.transforms the way the model's run did"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{who} got an empty batch (0 images)")
    return images


def fingerprint(model: Any) -> str:
    """SHA-256 of a model's class and state dict, to tell a detector's model from another.

    ``model`` is a torch module, or anything else with ``state_dict()`` (a
    :class:`~genood.ood.classifier.Classifier`).
    """
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().cpu().contiguous()
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()
