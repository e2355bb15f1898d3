"""Discretised logistic (mixture) likelihood over 256 levels, and the discrete-model base class.

A sub-pixel ``y in {0..255}`` is seen as ``x = y / 127.5 - 1``, the centre of the bin
``[x - 1/255, x + 1/255]`` of ``[-1, 1]``. Its probability under a logistic ``L(mu, s)`` is the
mass of that bin, with the two edge bins absorbing the tails (Salimans et al. 2017, PixelCNN++)::

    P(x) = sigma((x + 1/255 - mu) / s) - sigma((x - 1/255 - mu) / s)     (inner bins)
    P(-1) = sigma((-1 + 1/255 - mu) / s),   P(1) = 1 - sigma((1 - 1/255 - mu) / s)

so the 256 masses telescope to exactly 1. The inner-bin difference is evaluated in log space
without cancellation, ``log(sigma(a) - sigma(b)) = a + log(-expm1(b - a)) - softplus(a) -
softplus(b)``, so no midpoint-density fallback is needed.

The mixture is PixelCNN++'s: per pixel, ``K`` components; within a component the channels are
autoregressive through linear coefficients, ``mu_g = m_g + c_0 x_r``, ``mu_b = m_b + c_1 x_r +
c_2 x_g`` (for ``C`` channels, ``C (C - 1) / 2`` coefficients), so that
``p(x_r, x_g, x_b) = sum_k pi_k p_k(x_r) p_k(x_g | x_r) p_k(x_b | x_r, x_g)``.
:meth:`DiscretizedLogisticMixture.conditional_log_probs` splits this exactly into the channel
conditionals ``log p(x_c | x_{<c})`` (ratios of partial mixtures), which sum to the joint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genood.models.base import LikelihoodModel, check_images

NUM_BINS = 256
HALF_BIN = 1.0 / 255.0  # half the width of a bin of [-1, 1] cut into 256
MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor: s >= e^-7 keeps a bin's mass representable


def _float(t: Tensor) -> Tensor:
    """Promote to at least float32 (bf16 autocast outputs would lose the tails); keep float64."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Elementwise ``log P(bin of x)`` under a logistic ``L(mean, exp(log_scale))``.

    Args:
        x: values at bin centres of ``[-1, 1]`` (``y / 127.5 - 1``), any shape.
        mean, log_scale: broadcastable to ``x``; ``log_scale`` is floored at ``-7``.

    Returns:
        Log-masses in nats, the broadcast shape; ``exp`` of them sums to 1 over the 256 bins.
    """
    log_scale = log_scale.clamp(min=MIN_LOG_SCALE)
    inv_scale = torch.exp(-log_scale)
    centred = x - mean
    upper = inv_scale * (centred + HALF_BIN)  # standardised upper bin edge
    lower = inv_scale * (centred - HALF_BIN)
    log_cdf_upper = -F.softplus(-upper)  # log sigma(upper): mass of the bottom bin
    log_sf_lower = -F.softplus(lower)  # log (1 - sigma(lower)): mass of the top bin
    # log(sigma(a) - sigma(b)) = log(e^a - e^b) - softplus(a) - softplus(b), a > b; the floor
    # only bites for an infinitely wide logistic (a = b), and keeps the gradients that
    # torch.where sends through the unselected branches finite
    log_gap = torch.log((-torch.expm1(lower - upper)).clamp(min=1e-30))
    log_inner = upper + log_gap - F.softplus(upper) - F.softplus(lower)
    return torch.where(
        x < -1.0 + HALF_BIN, log_cdf_upper, torch.where(x > 1.0 - HALF_BIN, log_sf_lower, log_inner)
    )


class DiscretizedLogisticMixture:
    """PixelCNN++'s discretised logistic mixture with channel autoregression.

    Parameters come as one tensor ``(B, P, H, W)`` with ``P = K (1 + 2C + C(C-1)/2)``: ``K``
    mixture logits, then ``K x C`` means, ``K x C`` log-scales and ``K x C(C-1)/2`` raw
    coefficients (squashed with ``tanh``), each block laid out component-major.

    Args:
        channels: ``C``, sub-pixels per pixel.
        num_mixtures: ``K``, logistic components per pixel.
    """

    def __init__(self, channels: int, num_mixtures: int) -> None:
        if channels < 1 or num_mixtures < 1:
            raise ValueError(
                f"need channels >= 1 and num_mixtures >= 1, got {channels} and {num_mixtures}"
            )
        self.channels = channels
        self.num_mixtures = num_mixtures
        self.num_coeffs = channels * (channels - 1) // 2

    @property
    def num_params(self) -> int:
        """``P``, the channels of the parameter tensor a network must output."""
        return self.num_mixtures * (1 + 2 * self.channels + self.num_coeffs)

    def unpack(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Split ``(B, P, H, W)`` into logits ``(B, K, H, W)``, means and log-scales
        ``(B, K, C, H, W)`` and coefficients ``(B, K, C(C-1)/2, H, W)`` (after ``tanh``)."""
        if params.dim() != 4 or params.shape[1] != self.num_params:
            raise ValueError(
                f"expected mixture parameters of shape (B, {self.num_params}, H, W) for "
                f"{self.channels} channel(s) x {self.num_mixtures} component(s), "
                f"got {tuple(params.shape)}"
            )
        params = _float(params)
        b, _, h, w = params.shape
        k, c = self.num_mixtures, self.channels
        logits, means, log_scales, coeffs = torch.split(
            params, [k, k * c, k * c, k * self.num_coeffs], dim=1
        )
        means = means.reshape(b, k, c, h, w)
        log_scales = log_scales.reshape(b, k, c, h, w).clamp(min=MIN_LOG_SCALE)
        coeffs = torch.tanh(coeffs.reshape(b, k, self.num_coeffs, h, w))
        return logits, means, log_scales, coeffs

    def _channel_means(self, x: Tensor, means: Tensor, coeffs: Tensor) -> Tensor:
        """``mu_c = m_c + sum_{c' < c} coeff_{c, c'} x_{c'}`` per component, ``(B, K, C, H, W)``."""
        if self.channels == 1:
            return means
        shifted = [means[:, :, 0]]
        index = 0
        for c in range(1, self.channels):
            mean_c = means[:, :, c]
            for earlier in range(c):
                mean_c = mean_c + coeffs[:, :, index] * x[:, None, earlier]
                index += 1
            shifted.append(mean_c)
        return torch.stack(shifted, dim=2)

    def conditional_log_probs(self, x: Tensor, params: Tensor) -> Tensor:
        """``log p(x_c | x_{<c})`` per sub-pixel given the parameters, ``(B, C, H, W)``.

        With ``L_c = log sum_k pi_k prod_{c' <= c} p_k(x_{c'} | x_{<c'})`` (and ``L_{-1} = 0``),
        the conditional of channel ``c`` is ``L_c - L_{c-1}``; the ``C`` entries of a pixel sum to
        its joint log-mass. Entry ``c`` depends on ``x`` only through ``x_{<=c}`` of that pixel.
        """
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"expected x of shape (B, {self.channels}, H, W), got {tuple(x.shape)}"
            )
        logits, means, log_scales, coeffs = self.unpack(params)
        x = _float(x)
        mu = self._channel_means(x, means, coeffs)
        per_component = discretized_logistic_log_prob(x[:, None], mu, log_scales)  # (B,K,C,H,W)
        log_weights = torch.log_softmax(logits, dim=1)
        partial = torch.logsumexp(log_weights[:, :, None] + per_component.cumsum(dim=2), dim=1)
        return torch.cat([partial[:, :1], partial[:, 1:] - partial[:, :-1]], dim=1)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """Joint log-mass of each image in nats, ``(B,)``."""
        return self.conditional_log_probs(x, params).flatten(1).sum(dim=1)

    @torch.no_grad()
    def sample(
        self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``x`` at bin centres, ``(B, C, H, W)``, each pixel independently given ``params``.

        A component is drawn per pixel (Gumbel-max), then the channels in order from the
        logistic with the autoregressive mean; rounding the clamped continuous draw to the nearest
        bin centre gives exactly the discretised distribution. ``temperature`` scales ``s``.
        """
        logits, means, log_scales, coeffs = self.unpack(params)
        b, k, c, h, w = means.shape
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7)))
        choice = F.one_hot((logits + gumbel).argmax(dim=1), k).permute(0, 3, 1, 2).to(means)

        def pick(t: Tensor) -> Tensor:
            return (t * choice[:, :, None]).sum(dim=1)

        mean, log_scale, coeff = pick(means), pick(log_scales), pick(coeffs)
        x = torch.zeros(b, c, h, w, device=means.device, dtype=means.dtype)
        index = 0
        for channel in range(c):
            mu = mean[:, channel]
            for earlier in range(channel):
                mu = mu + coeff[:, index] * x[:, earlier]
                index += 1
            u = torch.rand(mu.shape, generator=generator, device=mu.device).clamp(1e-5, 1 - 1e-5)
            draw = mu + temperature * torch.exp(log_scale[:, channel]) * (
                torch.log(u) - torch.log1p(-u)
            )
            x[:, channel] = to_bin_centres(draw)
        return x


def to_bin_centres(x: Tensor) -> Tensor:
    """Snap values of ``[-1, 1]`` (clamped) to the nearest of the 256 bin centres."""
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0


class DiscreteLikelihoodModel(LikelihoodModel):
    """Base of models whose ``log p`` is a probability mass over the 256 levels per sub-pixel.

    ``x = y / 127.5 - 1`` (bin centres of ``[-1, 1]``) and ``log_scale = 0``, so bits/dim is
    ``-log2 P(y) / D``: the data's own discrete code length, with no change of variables.
    ``preprocess`` ignores ``dequantize``: a discrete likelihood already integrates its density
    over each bin, so uniform noise would only move ``x`` off the bin centres it reads the mass at
    (the continuous-model bound of Theis et al. 2016 does not arise).
    """

    log_scale: float = 0.0

    def preprocess(
        self, images: Tensor, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """uint8 ``(B, C, H, W)`` -> float ``x = y / 127.5 - 1`` (``dequantize`` is ignored)."""
        check_images(images, self.image_shape, f"{type(self).__name__}.preprocess")
        y = images.to(self.device, non_blocking=True).float()
        return y / 127.5 - 1.0

    def postprocess(self, x: Tensor) -> Tensor:
        """``[-1, 1]`` -> uint8, the exact inverse of :meth:`preprocess` on bin centres."""
        return torch.round((x.float().clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.uint8)
