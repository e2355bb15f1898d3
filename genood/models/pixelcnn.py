"""PixelCNN++ (Salimans et al. 2017): an autoregressive model with an exact log-likelihood.

``log p(x) = sum_{i,j} sum_c log p(x_{ijc} | x_{<ij}, x_{ij,<c})``: the pixels in raster order,
and within a pixel the channels in order (R, G, B). The network sees the image through two
causal streams (see :mod:`genood.models.layers`): ``u`` (rows above) and ``ul`` (rows above and
the pixels to the left), each a stack of gated resnets, over ``scales`` resolutions joined by
stride-2 shifted (de)convolutions with U-Net skips, as in the paper. It outputs, per pixel, a
discretised logistic mixture whose linear coefficients make the channels of one pixel
autoregressive (:class:`~genood.models.discretized.DiscretizedLogisticMixture`).

Differences from the paper, for small CPU budgets: no weight normalisation / data-dependent
initialisation (Adam trains the gated resnets without them at these sizes), and every width is a
hyper-parameter (paper: 160 filters, 5 resnets per stage, 3 scales, 10 components, dropout 0.5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from genood.models.discretized import DiscreteLikelihoodModel, DiscretizedLogisticMixture
from genood.models.hparams import check_positive, parse_hparams
from genood.models.layers import (
    DownRightShiftedConv2d,
    DownRightShiftedDeconv2d,
    DownShiftedConv2d,
    DownShiftedDeconv2d,
    GatedResnet,
    down_shift,
    right_shift,
)
from genood.models.registry import register


@dataclass(frozen=True)
class PixelCNNHparams:
    """PixelCNN++'s hyper-parameters (the paper: 160, 5, 3, 10, 0.5; these defaults are small).

    Attributes:
        filters: channels of both streams.
        resnet_blocks: gated resnets per stage of the upward pass (the downward pass mirrors it).
        scales: resolutions (1: no down-sampling; the paper uses 3: H, H/2, H/4).
        num_mixtures: logistic components per pixel.
        dropout: dropout inside the gated resnets.
    """

    filters: int = 64
    resnet_blocks: int = 2
    scales: int = 1
    num_mixtures: int = 5
    dropout: float = 0.0


class PixelCNN(DiscreteLikelihoodModel):
    """PixelCNN++ over 8-bit images, ``x = y / 127.5 - 1``.

    ``log_prob_terms`` splits the exact log-mass by channel: ``{"log_px"}`` for gray images,
    ``{"log_p_r", "log_p_g_given_r", "log_p_b_given_rg"}`` for RGB (each summed over pixels, and
    conditioned on all earlier pixels too), ``log_p_channel{c}`` otherwise.

    Args:
        image_shape: ``(C, H, W)``.
        hp: :class:`PixelCNNHparams`.
    """

    def __init__(self, image_shape: tuple[int, int, int], hp: PixelCNNHparams) -> None:
        super().__init__(image_shape)
        check_positive(
            "pixelcnn", filters=hp.filters, resnet_blocks=hp.resnet_blocks, scales=hp.scales
        )
        channels, height, width = self.image_shape
        if min(height, width) < 2 ** (hp.scales - 1):
            raise ValueError(
                f"pixelcnn: {hp.scales} scales halve the image {hp.scales - 1} times: "
                f"{height}x{width} is too small; use fewer scales"
            )
        self.hparams = dataclasses.asdict(hp)
        filters, resnet_blocks, scales, dropout = (
            hp.filters,
            hp.resnet_blocks,
            hp.scales,
            hp.dropout,
        )
        self.mixture = DiscretizedLogisticMixture(channels, hp.num_mixtures)
        self.scales = scales
        f = filters

        # +1 input channel of ones, so that the zero padding of the shifts is told from black
        self.u_init = DownShiftedConv2d(channels + 1, f, (2, 3))
        self.ul_init_above = DownShiftedConv2d(channels + 1, f, (1, 3))
        self.ul_init_left = DownRightShiftedConv2d(channels + 1, f, (2, 1))

        def u_block(skip: int) -> GatedResnet:
            return GatedResnet(f, DownShiftedConv2d, skip_channels=skip, dropout=dropout)

        def ul_block(skip: int) -> GatedResnet:
            return GatedResnet(f, DownRightShiftedConv2d, skip_channels=skip, dropout=dropout)

        self.up_u = nn.ModuleList(
            nn.ModuleList(u_block(0) for _ in range(resnet_blocks)) for _ in range(scales)
        )
        self.up_ul = nn.ModuleList(
            nn.ModuleList(ul_block(f) for _ in range(resnet_blocks)) for _ in range(scales)
        )
        self.down_u_sample = nn.ModuleList(
            DownShiftedConv2d(f, f, (2, 3), stride=2) for _ in range(scales - 1)
        )
        self.down_ul_sample = nn.ModuleList(
            DownRightShiftedConv2d(f, f, (2, 2), stride=2) for _ in range(scales - 1)
        )
        # downward pass: one more block per stage after the first, to consume the
        # down-sampling outputs as skips (the paper's nr_resnet / nr_resnet + 1)
        depths = [resnet_blocks] + [resnet_blocks + 1] * (scales - 1)
        self.down_u = nn.ModuleList(
            nn.ModuleList(u_block(f) for _ in range(depth)) for depth in depths
        )
        self.down_ul = nn.ModuleList(
            nn.ModuleList(ul_block(2 * f) for _ in range(depth)) for depth in depths
        )
        self.up_u_sample = nn.ModuleList(DownShiftedDeconv2d(f, f) for _ in range(scales - 1))
        self.up_ul_sample = nn.ModuleList(DownRightShiftedDeconv2d(f, f) for _ in range(scales - 1))
        self.out = nn.Conv2d(f, self.mixture.num_params, 1)

    # ----------------------------------------------------------------- network
    def mixture_params(self, x: Tensor) -> Tensor:
        """Mixture parameters ``(B, P, H, W)``; pixel ``(i, j)`` depends on pixels before it only."""
        ones = torch.ones_like(x[:, :1])
        x = torch.cat([x, ones], dim=1)
        u_skips = [down_shift(self.u_init(x))]
        ul_skips = [down_shift(self.ul_init_above(x)) + right_shift(self.ul_init_left(x))]
        for scale in range(self.scales):
            for u_block, ul_block in zip(
                _at(self.up_u, scale), _at(self.up_ul, scale), strict=True
            ):
                u = u_block(u_skips[-1])
                ul_skips.append(ul_block(ul_skips[-1], skip=u))
                u_skips.append(u)
            if scale < self.scales - 1:
                u_skips.append(self.down_u_sample[scale](u_skips[-1]))
                ul_skips.append(self.down_ul_sample[scale](ul_skips[-1]))

        u, ul = u_skips.pop(), ul_skips.pop()
        for scale in range(self.scales):
            for u_block, ul_block in zip(
                _at(self.down_u, scale), _at(self.down_ul, scale), strict=True
            ):
                u = u_block(u, skip=u_skips.pop())
                ul = ul_block(ul, skip=torch.cat([u, ul_skips.pop()], dim=1))
            if scale < self.scales - 1:
                # crop trailing rows/columns (odd sizes); the top-left alignment keeps causality
                h, w = u_skips[-1].shape[2:]
                u = self.up_u_sample[scale](u)[:, :, :h, :w]
                ul = self.up_ul_sample[scale](ul)[:, :, :h, :w]
        return self.out(nn.functional.elu(ul))

    def conditional_log_probs(self, x: Tensor) -> Tensor:
        """``log p(x_{ijc} | everything before it)`` in nats, ``(B, C, H, W)``.

        The order is raster over pixels, then channels within a pixel; entry ``(c, i, j)`` has
        zero gradient with respect to every later sub-pixel, and its own value enters only as the
        bin whose mass is read off.
        """
        return self.mixture.conditional_log_probs(x, self.mixture_params(x))

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Exact ``log p(x)`` split by channel (see the class docstring), each ``(B,)``."""
        per_channel = self.conditional_log_probs(x).flatten(2).sum(dim=2)  # (B, C)
        return dict(zip(self.term_names(), per_channel.unbind(dim=1), strict=True))

    def term_names(self) -> list[str]:
        """Names of the terms of :meth:`log_prob_terms`, one per channel."""
        channels = self.image_shape[0]
        if channels == 1:
            return ["log_px"]
        if channels == 3:
            return ["log_p_r", "log_p_g_given_r", "log_p_b_given_rg"]
        return [f"log_p_channel{c}" for c in range(channels)]

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, progress: bool = False) -> Tensor:
        """Draw ``n`` images pixel by pixel; ``temperature`` scales the logistic scales.

        ``H x W`` network passes; the pass for row ``i`` runs on rows ``0..i`` only (the rows
        below cannot change it), which halves the cost. Returns ``x`` at bin centres,
        ``(n, C, H, W)``.
        """
        channels, height, width = self.image_shape
        dtype = self.out.weight.dtype
        x = torch.zeros(n, channels, height, width, device=self.device, dtype=dtype)
        for i in tqdm(range(height), desc="sampling rows", disable=not progress, leave=False):
            for j in range(width):
                params = self.mixture_params(x[:, :, : i + 1])[:, :, i : i + 1, j : j + 1]
                x[:, :, i : i + 1, j : j + 1] = self.mixture.sample(params, temperature).to(dtype)
        return x

    def describe(self) -> dict[str, object]:
        return {**super().describe(), **self.hparams, "likelihood": "exact"}


def _at(stages: nn.ModuleList, scale: int) -> nn.ModuleList:
    """The blocks of one scale (``ModuleList`` indexing is typed as returning a ``Module``)."""
    return cast(nn.ModuleList, stages[scale])


@register("pixelcnn")
def build_pixelcnn(image_shape: tuple[int, int, int], **hparams: Any) -> PixelCNN:
    """``build("pixelcnn", (C, H, W), filters=..., resnet_blocks=..., scales=..., ...)``."""
    return PixelCNN(image_shape, parse_hparams(PixelCNNHparams, "pixelcnn", hparams))
