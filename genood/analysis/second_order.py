"""The second-order analysis of Nalisnick et al. (ICLR 2019), §5.

Expanding ``log p(x)`` to second order around ``x0`` and taking expectations under the training
distribution ``p*`` and a test distribution ``q`` with the same mean ``x0 = E[x]``:

    E_q[log p(x)] - E_p*[log p(x)]  ~  1/2 Tr{ H(x0) (Sigma_q - Sigma_p*) },        (paper eq. 5)

with ``H`` the Hessian of ``log p`` in x. For a constant-volume Glow (additive couplings whose
translations are treated as locally constant, 1x1 convolutions ``U_k``, a prior
``N(0, sigma^2 I)``) the Hessian is per channel and the paper's closed form is

    E_q - E_p*  ~  -1/(2 sigma^2) sum_c alpha_c^2 sum_{h,w} (sigma^2_{q,hwc} - sigma^2_{p*,hwc}),
    alpha_c = prod_k sum_j u_{k,c,j}.                                                (paper eq. 6)

Since ``alpha_c^2 >= 0`` the sign is set by the variances: a test set with lower variance in
every channel is predicted to be *more* likely. **Scale**: variances are on the model's input
scale ``x = y/256 - 1/2`` (genood's and Glow's), within 0.8 % of ``y/255``, i.e. the ``[0, 1]``
scale. That is the scale of the paper's CIFAR-10 vs SVHN figures: per-pixel variances of order
0.04-0.06 summed over 32x32 pixels give differences of order 10 per channel (paper: 12.3, 6.5,
14.5, printed as CIFAR-10 minus SVHN since eq. 6 carries the minus sign); on ``[0, 255]`` they
would be 65025 times larger. :func:`variance_differences` returns ``q - p*`` (so about
``-12.3, -6.5, -14.5`` for p* = CIFAR-10, q = SVHN; for p* = the FashionMNIST test set and
q = the 10,000 MNIST digits of ``mnist-10k``, at 28x28, it is -15.05: MNIST varies less).

Besides the closed form, the analysis evaluates eq. 5 with the model's *actual* Hessian at ``x0``
(by automatic differentiation), which holds for any flow and needs none of eq. 6's assumptions,
and the full second-order Taylor expansion including the first-order and mean-shift terms (the
data's "location" in the paper's abstract). All gaps are ``E_q - E_p*`` in nats per image:
positive means the test (OOD) set is predicted more likely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from genood.models.base import LikelihoodModel

# genood's (and Glow's) model space: x = y/256 - 1/2; the paper's variance scale.
MODEL_SCALE = 1.0 / 256.0


# ----------------------------------------------------------------------------- data side
def _images(images: np.ndarray | Tensor, name: str) -> np.ndarray:
    array = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if array.ndim != 4 or array.shape[0] < 2:
        raise ValueError(f"{name} must be (N, C, H, W) with N >= 2, got shape {array.shape}")
    return array


def pixel_moments(
    images: np.ndarray | Tensor, scale: float = MODEL_SCALE, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sub-pixel mean and variance (ddof 0) of ``images * scale``, each ``(C, H, W)``.

    Accumulates in float64 chunk by chunk so uint8 data sets are never held as float.
    """
    array = _images(images, "images")
    total = np.zeros(array.shape[1:], dtype=np.float64)
    total_sq = np.zeros(array.shape[1:], dtype=np.float64)
    for start in range(0, len(array), chunk):
        part = array[start : start + chunk].astype(np.float64) * scale
        total += part.sum(axis=0)
        total_sq += np.square(part).sum(axis=0)
    mean = total / len(array)
    return mean, np.maximum(total_sq / len(array) - np.square(mean), 0.0)


def squeeze2x2(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W) -> (N, 4C, H/2, W/2)``, channel ``4c + 2i + j`` holding offset ``(i, j)``.

    The layout of Glow's first squeeze, so that per-channel sums pair with the first level's
    1x1 convolutions.
    """
    n, c, h, w = images.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs even height and width, got {h}x{w}")
    x = images.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * 4, h // 2, w // 2)


def variance_differences(
    images_p: np.ndarray | Tensor,
    images_q: np.ndarray | Tensor,
    scale: float = MODEL_SCALE,
    layout: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Per-channel ``sum_{h,w} (sigma^2_q - sigma^2_p*)``, the data side of paper eq. 6.

    Args:
        images_p: the training distribution's images ``(N, C, H, W)`` (uint8 or float).
        images_q: the test distribution's images, same shape per image.
        scale: multiplies pixel values before the variances (default ``1/256``: the model
            scale, the paper's; pass ``1/255`` for ``[0, 1]`` exactly, ``1`` for raw levels).
        layout: optional map applied to both sets first, e.g. :func:`squeeze2x2` to sum per
            squeezed channel.

    Returns:
        ``(C,)`` float64; negative where ``q`` varies less than ``p*``.
    """
    p, q = _images(images_p, "images_p"), _images(images_q, "images_q")
    if layout is not None:
        p, q = layout(p), layout(q)
    if p.shape[1:] != q.shape[1:]:
        raise ValueError(f"image shapes differ: {p.shape[1:]} vs {q.shape[1:]}")
    _, var_p = pixel_moments(p, scale)
    _, var_q = pixel_moments(q, scale)
    return (var_q - var_p).sum(axis=(1, 2))


# ----------------------------------------------------------------------------- model side
def _matrices(matrices: Sequence[np.ndarray | Tensor]) -> list[np.ndarray]:
    out = [
        (m.detach().cpu().double().numpy() if isinstance(m, Tensor) else np.asarray(m, float))
        for m in matrices
    ]
    if not out:
        raise ValueError("need at least one channel-mixing matrix")
    size = out[0].shape
    for index, m in enumerate(out):
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape != size:
            raise ValueError(
                f"channel-mixing matrices must all be square of one size {size}; matrix "
                f"{index} has shape {m.shape} (pass one level's matrices, e.g. via "
                "first_level_matrices)"
            )
    return out


def first_level_matrices(matrices: Sequence[np.ndarray | Tensor]) -> list[np.ndarray]:
    """The leading run of equal-sized matrices: the 1x1 convolutions of a multi-scale flow's
    first level, which act on every dimension before anything is factored out."""
    if not matrices:
        raise ValueError("need at least one channel-mixing matrix")
    size = tuple(matrices[0].shape)
    run = []
    for m in matrices:
        if tuple(m.shape) != size:
            break
        run.append(m)
    return _matrices(run)


def alphas_from_matrices(matrices: Sequence[np.ndarray | Tensor]) -> np.ndarray:
    """The paper's ``alpha_c = prod_k sum_j u_{k,c,j}`` (eq. 6).

    Args:
        matrices: the 1x1 convolutions ``U_1 .. U_K`` in flow order (data to latent), each
            ``(C, C)`` acting as ``z = U x`` per pixel (PyTorch's ``weight[out, in]``), so
            ``u_{k,c,j} = U_k[c, j]`` and the sum runs over row ``c``.

    Returns:
        ``(C,)``. Eq. 6 uses ``alpha_c^2`` as channel ``c``'s curvature; it equals the exact
        curvature of :func:`linear_flow_curvature` when the matrices are diagonal, and is the
        paper's approximation otherwise.
    """
    return np.prod([m.sum(axis=1) for m in _matrices(matrices)], axis=0)


def linear_flow_curvature(matrices: Sequence[np.ndarray | Tensor]) -> np.ndarray:
    """Exact per-channel curvature ``diag(M^T M)``, ``M = U_K ... U_1``, of a linear flow.

    For ``z = M x`` per pixel and a prior ``N(0, sigma^2 I)``, ``d^2 log p / dx_c^2 =
    -(M^T M)_{cc} / sigma^2``; with per-channel-uncorrelated data eq. 5 is then exact with
    ``alpha_c^2`` replaced by this.
    """
    product = np.eye(_matrices(matrices)[0].shape[0])
    for m in _matrices(matrices):
        product = m @ product
    return np.square(product).sum(axis=0)


def predicted_gap_from_curvature(
    curvature: np.ndarray, prior_var: float, var_diffs: np.ndarray
) -> float:
    """``-1/(2 sigma^2) sum_c kappa_c * var_diffs_c`` in nats per image."""
    kappa, diffs = np.asarray(curvature, float), np.asarray(var_diffs, float)
    if kappa.shape != diffs.shape or kappa.ndim != 1:
        raise ValueError(
            f"one curvature per channel expected: got {kappa.shape} for {diffs.shape} "
            "variance differences (with a squeezing flow, sum the variances per squeezed "
            "channel: variance_differences(..., layout=squeeze2x2))"
        )
    if prior_var <= 0:
        raise ValueError(f"prior_var must be positive, got {prior_var}")
    return float(-(kappa * diffs).sum() / (2.0 * prior_var))


def predicted_gap(alphas: np.ndarray, prior_var: float, var_diffs: np.ndarray) -> float:
    """Paper eq. 6: ``-1/(2 sigma^2) sum_c alpha_c^2 sum_{h,w}(sigma^2_q - sigma^2_p*)``.

    Args:
        alphas: ``(C,)`` from :func:`alphas_from_matrices`.
        prior_var: ``sigma^2`` of the Gaussian prior on z.
        var_diffs: ``(C,)`` from :func:`variance_differences` on the model's scale.

    Returns:
        ``E_q[log p] - E_p*[log p]`` in nats per image (positive: q predicted more likely).
    """
    return predicted_gap_from_curvature(np.square(np.asarray(alphas, float)), prior_var, var_diffs)


def log_prob_hessian(
    log_prob_fn: Callable[[Tensor], Tensor], x0: Tensor, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``(D,)`` and Hessian ``(D, D)`` of ``log_prob_fn`` at one point ``x0``.

    Each chunk of Hessian rows is one double-backward pass over a batch of copies of ``x0``,
    row ``i`` of the batch taking the product with basis vector ``e_i``; this needs
    ``log_prob_fn`` to treat batch elements independently (flows in eval mode do).

    Args:
        log_prob_fn: ``(B, *x0.shape) -> (B,)`` log-density, e.g. ``model.log_prob``.
        x0: the expansion point in the model's input space.
        chunk: Hessian rows per pass.
    """
    x0 = x0.detach()
    dims = x0.numel()
    hessian = np.zeros((dims, dims))
    with torch.enable_grad():
        point = x0.unsqueeze(0).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_prob_fn(point).sum(), point, allow_unused=True)
        gradient = np.zeros(dims) if grad is None else grad.reshape(-1).double().cpu().numpy()
        for start in range(0, dims, chunk):
            rows = torch.arange(start, min(dims, start + chunk), device=x0.device)
            batch = x0.expand(len(rows), *x0.shape).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(log_prob_fn(batch).sum(), batch, create_graph=True)
            picked = g.reshape(len(rows), dims)[torch.arange(len(rows)), rows]
            if not picked.requires_grad:  # log p is linear in x: no curvature
                continue
            (hv,) = torch.autograd.grad(picked.sum(), batch, allow_unused=True)
            if hv is not None:
                hessian[start : start + len(rows)] = hv.reshape(len(rows), dims).double().cpu()
    return gradient, (hessian + hessian.T) / 2.0


def _quadratic_means(x: np.ndarray, center: np.ndarray, hessian: np.ndarray) -> float:
    """``mean_i (x_i - c)^T H (x_i - c)`` over rows of ``x`` ``(N, D)``, in chunks."""
    total = 0.0
    for start in range(0, len(x), 1024):
        d = x[start : start + 1024] - center
        total += float(np.einsum("nd,nd->", d @ hessian, d))
    return total / len(x)


# ----------------------------------------------------------------------------- the analysis
@dataclass
class SecondOrderResult:
    """Predicted and measured ``E_q[log p] - E_p*[log p]``, nats per image.

    Attributes:
        num_dims: ``D``.
        scale: the pixel scale of the variances.
        variance_differences: per image channel ``sum_{h,w}(sigma^2_q - sigma^2_p*)``.
        measured_gap: from the model's scores; ``measured_gap_bpd`` the same in bits/dim
            (OOD minus in, so of opposite sign).
        predicted: the predictions computed, by name: ``paper_formula`` (eq. 6 with the first
            level's 1x1 convolutions), ``hessian_variance`` (eq. 5 with the model's Hessian at
            the training mean), ``hessian_full`` (second-order Taylor with the mean-shift
            terms).
        headline: the prediction the sign check uses (``paper_formula`` when available).
        sign_match: ``True`` when the headline prediction and the measured gap share a sign.
        alphas / prior_var: eq. 6's inputs, when used; ``notes``: why a prediction is missing.
    """

    num_dims: int
    scale: str
    variance_differences: list[float]
    measured_gap: float
    measured_gap_bpd: float
    predicted: dict[str, float]
    headline: str
    sign_match: bool
    alphas: list[float] | None = None
    prior_var: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict for ``results.json``'s ``analyses``."""
        return asdict(self)

    @property
    def headline_gap(self) -> float:
        """The headline prediction, nats per image."""
        return self.predicted[self.headline]

    def describe(self) -> str:
        """One line for a verdict table's "measured" column."""
        diffs = ", ".join(f"{d:+.2f}" for d in self.variance_differences)
        return (
            f"predicted {self.headline_gap:+.1f} ({self.headline}) vs measured "
            f"{self.measured_gap:+.1f} nats/image; sum of variance differences per channel "
            f"(OOD minus in, {self.scale}): {diffs}"
        )


def _model_space(model: LikelihoodModel, images: np.ndarray) -> np.ndarray:
    """uint8 images -> the model's (deterministic) inputs, ``(N, D)`` float64."""
    out = []
    for start in range(0, len(images), 1024):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + 1024]))
        out.append(model.preprocess(batch, dequantize=False).double().cpu().numpy())
    x = np.concatenate(out)
    return x.reshape(len(x), -1)


def second_order_analysis(
    images_p: np.ndarray,
    images_q: np.ndarray,
    log_prob_p: np.ndarray,
    log_prob_q: np.ndarray,
    model: LikelihoodModel | None = None,
    matrices: Sequence[np.ndarray | Tensor] | None = None,
    prior_var: float = 1.0,
    hessian: bool = True,
    max_hessian_dims: int = 4096,
    chunk: int = 64,
) -> SecondOrderResult:
    """Paper §5 for one trained model: variance differences, predictions, measured gap.

    Args:
        images_p: uint8 ``(N, C, H, W)`` from the training distribution (expansion point: its
            mean in model space).
        images_q: uint8 images from the test (OOD) distribution.
        log_prob_p / log_prob_q: per-sample ``log p(x)`` in nats from
            :func:`~genood.models.scoring.score_images` (``"log_prob"``), same images.
        model: the trained :class:`~genood.models.base.LikelihoodModel`, for the Hessian and
            (when it has ``channel_mixing_matrices()``) eq. 6.
        matrices: the 1x1 convolutions in flow order, overriding the model's.
        prior_var: ``sigma^2`` of the Gaussian prior (eq. 6 assumes a fixed one).
        hessian: compute the Hessian-based predictions (``D`` double-backward rows).
        max_hessian_dims: skip the Hessian above this ``D``.
        chunk: Hessian rows per pass.
    """
    p, q = _images(images_p, "images_p"), _images(images_q, "images_q")
    num_dims = int(np.prod(p.shape[1:]))
    lp_p = np.asarray(log_prob_p, dtype=np.float64).reshape(-1)
    lp_q = np.asarray(log_prob_q, dtype=np.float64).reshape(-1)
    if len(lp_p) != len(p) or len(lp_q) != len(q):
        raise ValueError("log_prob_p / log_prob_q need one value per image of images_p / _q")
    measured = float(lp_q.mean() - lp_p.mean())
    predicted: dict[str, float] = {}
    notes: list[str] = []
    alphas: list[float] | None = None

    if matrices is None and model is not None and hasattr(model, "channel_mixing_matrices"):
        # genood's FlowModel folds each step's ActNorm scale into its matrix; only the first
        # level's steps act on every dimension (later levels see what was not factored out).
        mixing = cast(Any, model).channel_mixing_matrices  # FlowModel's, found by hasattr
        try:
            matrices = list(mixing(level=0))
        except TypeError:  # a model whose method takes no level
            matrices = list(mixing())
    if matrices:
        level = first_level_matrices(matrices)
        size, channels = level[0].shape[0], p.shape[1]
        layout = None if size == channels else squeeze2x2 if size == 4 * channels else None
        if size in (channels, 4 * channels):
            diffs = variance_differences(p, q, layout=layout)
            alpha = alphas_from_matrices(level)
            predicted["paper_formula"] = predicted_gap(alpha, prior_var, diffs)
            alphas = [float(a) for a in alpha]
        else:
            notes.append(
                f"eq. 6 skipped: the first 1x1 convolutions act on {size} channels, the images "
                f"have {channels} (neither equal nor one 2x2 squeeze)"
            )
    else:
        notes.append("eq. 6 skipped: no channel-mixing matrices (not a CV-Glow)")

    if hessian and model is not None and num_dims <= max_hessian_dims:
        model.eval()
        xp, xq = _model_space(model, p), _model_space(model, q)
        x0 = xp.mean(axis=0)
        start = torch.as_tensor(x0.reshape(p.shape[1:]), dtype=torch.float32)
        grad, hess = log_prob_hessian(model.log_prob, start.to(model.device), chunk)
        # Eq. 5: each set centred at its own mean, so only the covariances enter.
        predicted["hessian_variance"] = 0.5 * (
            _quadratic_means(xq, xq.mean(axis=0), hess) - _quadratic_means(xp, x0, hess)
        )
        # The full quadratic Taylor polynomial at x0, averaged over each set.
        predicted["hessian_full"] = float(grad @ (xq.mean(axis=0) - x0)) + 0.5 * (
            _quadratic_means(xq, x0, hess) - _quadratic_means(xp, x0, hess)
        )
    elif hessian and model is not None:
        notes.append(f"Hessian skipped: D = {num_dims} > max_hessian_dims = {max_hessian_dims}")

    if not predicted:
        raise ValueError(
            "no prediction could be made: pass a model (for the Hessian) or the 1x1 "
            f"convolution matrices (for eq. 6); {'; '.join(notes)}"
        )
    headline = "paper_formula" if "paper_formula" in predicted else "hessian_variance"
    if headline not in predicted:
        headline = next(iter(predicted))
    value = predicted[headline]
    return SecondOrderResult(
        num_dims=num_dims,
        scale="x = y/256 - 1/2 (model space, ~[0, 1])",
        variance_differences=[float(d) for d in variance_differences(p, q)],
        measured_gap=measured,
        measured_gap_bpd=-measured / (num_dims * math.log(2.0)),
        predicted={k: float(v) for k, v in predicted.items()},
        headline=headline,
        sign_match=bool(value != 0 and (value > 0) == (measured > 0)),
        alphas=alphas,
        prior_var=float(prior_var) if alphas is not None else None,
        notes=notes,
    )


__all__ = [
    "MODEL_SCALE",
    "SecondOrderResult",
    "alphas_from_matrices",
    "first_level_matrices",
    "linear_flow_curvature",
    "log_prob_hessian",
    "pixel_moments",
    "predicted_gap",
    "predicted_gap_from_curvature",
    "second_order_analysis",
    "squeeze2x2",
    "variance_differences",
]
