"""Graying: shrink the data's variance toward its mean and watch the likelihood (§5).

The second-order analysis of Nalisnick et al. (2019) predicts that a model's log-likelihood
*rises* as the data's variance falls (the Hessian of ``log p`` is negative), so images pushed
toward gray should look ever more likely. With a factor ``a`` in ``[0, 1]``:

    x_gray = m + a * (x - m),     rounded back to 8 bits,

where the centre ``m`` is the data set's mean, either **per channel** (``center="channel"``, the
default: at ``a = 0`` every image is one flat gray per channel, literally graying) or **per
sub-pixel** (``center="pixel"``: at ``a = 0`` every image is the mean image; the covariance is
scaled by exactly ``a^2`` and the mean kept, the case the expansion analyses).

``keep_black=True`` leaves sub-pixels that are exactly 0 at 0 and grays only the rest: on data
with black backgrounds (FashionMNIST, MNIST) it separates the cost of lifting the background off
the value the model is surest of from the effect of shrinking the object's variance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

CENTERS = ("channel", "pixel")


def _check_images(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(
            f"expected a non-empty uint8 (N, C, H, W) batch, got dtype {array.dtype} and shape "
            f"{array.shape}"
        )
    return array


def data_mean(images: np.ndarray, center: str = "channel") -> np.ndarray:
    """The centre graying shrinks toward: ``(C, 1, 1)`` per channel or ``(C, H, W)`` per pixel."""
    array = _check_images(images)
    if center == "channel":
        return array.mean(axis=(0, 2, 3), dtype=np.float64)[:, None, None]
    if center == "pixel":
        return array.mean(axis=0, dtype=np.float64)
    raise ValueError(f"center must be one of {CENTERS}, got {center!r}")


def gray_images(
    images: np.ndarray,
    factor: float,
    center: str = "channel",
    mean: np.ndarray | None = None,
    keep_black: bool = False,
) -> np.ndarray:
    """``mean + factor * (images - mean)``, rounded to the nearest level and clipped to 0..255.

    Args:
        images: uint8 ``(N, C, H, W)``.
        factor: ``1`` keeps the images (exactly), ``0`` replaces them by the centre.
        center: ``"channel"`` or ``"pixel"`` (see the module doc).
        mean: a precomputed centre from :func:`data_mean` (defaults to these images' own).
        keep_black: leave sub-pixels that are exactly 0 at 0 (gray only the object).
    """
    array = _check_images(images)
    if not 0.0 <= factor <= 1.0:
        raise ValueError(f"factor must be in [0, 1], got {factor}")
    centre = data_mean(array, center) if mean is None else np.asarray(mean, dtype=np.float64)
    if factor == 1.0:
        return array.copy()
    grayed = centre + factor * (array.astype(np.float64) - centre)
    grayed = np.clip(np.rint(grayed), 0, 255).astype(np.uint8)
    return np.where(array == 0, array, grayed) if keep_black else grayed


def graying_curve(
    score_fn: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    factors: Sequence[float] = (1.0, 0.75, 0.5, 0.25, 0.0),
    center: str = "channel",
    keep_black: bool = False,
) -> list[tuple[float, float]]:
    """Mean bits/dim of ``images`` grayed by each factor.

    Args:
        score_fn: uint8 ``(N, C, H, W)`` -> per-sample bits/dim, e.g.
            ``lambda x: score_images(model, x)["bits_per_dim"]``.
        images: the data set to gray (its own mean is the centre).
        factors: shrink factors in ``[0, 1]``; include ``1.0`` for the original data.
        center: ``"channel"`` or ``"pixel"``.
        keep_black: gray only the sub-pixels that are not exactly 0 (see the module doc).

    Returns:
        ``[(factor, mean_bpd), ...]`` in the order of ``factors``. The paper predicts
        ``mean_bpd`` falls (likelihood rises) as the factor falls.
    """
    if len(factors) == 0:
        raise ValueError("factors must not be empty")
    centre = data_mean(images, center)
    curve = []
    for factor in factors:
        grayed = gray_images(images, float(factor), center, centre, keep_black)
        bpd = np.asarray(score_fn(grayed))
        if bpd.shape != (len(images),):
            raise ValueError(
                f"score_fn must return one bits/dim per image, shape ({len(images)},); "
                f"got {bpd.shape}"
            )
        curve.append((float(factor), float(bpd.mean())))
    return curve


__all__ = ["CENTERS", "data_mean", "gray_images", "graying_curve"]
