"""Convolutional building blocks: PixelCNN++'s shifted convolutions and gated resnets, and the
plain residual block of the VAEs.

Causality of the shifted convolutions (Salimans et al. 2017, van den Oord et al. 2016): with the
image in raster order,

* a *down-shifted* convolution with a ``(kh, kw)`` kernel sees rows ``i - kh + 1 .. i`` and
  columns ``j - (kw-1)/2 .. j + (kw-1)/2`` (padding above and on both sides); followed by
  :func:`down_shift` it sees only rows above ``i``: the "u" stream, no blind spot.
* a *down-right-shifted* convolution sees rows ``i - kh + 1 .. i`` and columns ``j - kw + 1 .. j``;
  followed by :func:`right_shift` it sees only pixels before ``(i, j)``: the "ul" stream.

Stacking either kind on a stream that is already causal keeps it causal, so only the first layer
of each stream needs the shift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def concat_elu(x: Tensor) -> Tensor:
    """``elu([x, -x])`` along channels: PixelCNN++'s non-linearity (doubles the channels)."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: Tensor) -> Tensor:
    """Shift rows down by one, filling the top row with zeros."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: Tensor) -> Tensor:
    """Shift columns right by one, filling the left column with zeros."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class _ShiftedConv2d(nn.Conv2d):
    """Convolution padded on some sides only, so that its output stays causal; subclasses set
    ``default_kernel`` and :meth:`padding_for`."""

    default_kernel: tuple[int, int] = (2, 2)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int] | None = None,
        stride: int = 1,
    ) -> None:
        kernel = kernel_size or self.default_kernel
        super().__init__(in_channels, out_channels, kernel, stride=stride)
        self.shift_pad = self.padding_for(kernel)

    def padding_for(self, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
        """``F.pad``'s (left, right, top, bottom) for ``kernel``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.shift_pad))


class DownShiftedConv2d(_ShiftedConv2d):
    """Convolution whose output at ``(i, j)`` sees rows ``<= i`` only (pad top, left, right)."""

    default_kernel = (2, 3)

    def padding_for(self, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
        kh, kw = kernel
        if kw % 2 != 1:
            raise ValueError(f"a down-shifted kernel needs an odd width, got {kernel}")
        return ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)


class DownRightShiftedConv2d(_ShiftedConv2d):
    """Convolution whose output at ``(i, j)`` sees rows ``<= i`` and columns ``<= j``."""

    default_kernel = (2, 2)

    def padding_for(self, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
        kh, kw = kernel
        return (kw - 1, 0, kh - 1, 0)


class _ShiftedDeconv2d(nn.ConvTranspose2d):
    """Stride-2 transposed convolution whose output :meth:`crop` keeps causal (shifted);
    subclasses set ``default_kernel``."""

    default_kernel: tuple[int, int] = (2, 2)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: tuple[int, int] | None = None
    ) -> None:
        kernel = kernel_size or self.default_kernel
        super().__init__(in_channels, out_channels, kernel, stride=2, output_padding=1)
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.crop(super().forward(x))

    def crop(self, out: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class DownShiftedDeconv2d(_ShiftedDeconv2d):
    """Stride-2 transposed convolution cropped so that the output stays down-shifted."""

    default_kernel = (2, 3)

    def crop(self, out: Tensor) -> Tensor:
        kh, kw = self.kernel
        h, w = out.shape[2], out.shape[3]
        return out[:, :, : h - kh + 1, (kw - 1) // 2 : w - (kw - 1) // 2]


class DownRightShiftedDeconv2d(_ShiftedDeconv2d):
    """Stride-2 transposed convolution cropped so that the output stays down-right-shifted."""

    default_kernel = (2, 2)

    def crop(self, out: Tensor) -> Tensor:
        kh, kw = self.kernel
        return out[:, :, : out.shape[2] - kh + 1, : out.shape[3] - kw + 1]


class GatedResnet(nn.Module):
    """PixelCNN++'s gated residual block, ``x + a * sigmoid(b)`` with ``[a, b]`` from

    ``conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip)))))``.

    ``conv`` is a shifted convolution class, which keeps the block as causal as its inputs.

    Args:
        filters: channels of ``x`` (and of the output).
        conv: :class:`DownShiftedConv2d` or :class:`DownRightShiftedConv2d`.
        skip_channels: channels of the optional auxiliary input ``skip`` (0: none).
        dropout: dropout probability between the two convolutions.
    """

    def __init__(
        self,
        filters: int,
        conv: type[DownShiftedConv2d] | type[DownRightShiftedConv2d],
        skip_channels: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv_in = conv(2 * filters, filters)
        self.skip = nn.Conv2d(2 * skip_channels, filters, 1) if skip_channels else None
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv(2 * filters, 2 * filters)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        h = self.conv_in(concat_elu(x))
        if self.skip is not None:
            if skip is None:
                raise ValueError("this gated resnet was built with a skip input; pass skip=")
            h = h + self.skip(concat_elu(skip))
        a, b = self.conv_out(self.dropout(concat_elu(h))).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class ResBlock(nn.Module):
    """Pre-activation residual block ``x + conv(elu(conv(elu(x))))`` for the VAEs.

    The second convolution starts at zero, so a stack of blocks starts as the identity (a stable
    start for deep encoders and decoders without normalisation layers).
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]  # bias=True: never None

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


def apply_weight_norm(module: nn.Module) -> None:
    """Weight-normalise every ``Conv2d`` and ``Linear`` in ``module`` (Salimans & Kingma 2016).

    ``w = g v / ||v||`` per output channel. A weight initialised to zero (the last convolution
    of a :class:`ResBlock`) gets a random direction ``v`` and ``g = 0`` instead, so it still
    starts at zero without dividing by a zero norm.
    """
    from torch.nn.utils.parametrizations import weight_norm

    for layer in list(module.modules()):
        if not isinstance(layer, nn.Conv2d | nn.Linear):
            continue
        zero = not bool(layer.weight.detach().any())
        if zero:
            bias = None if layer.bias is None else layer.bias.detach().clone()
            layer.reset_parameters()
            if bias is not None:
                with torch.no_grad():
                    layer.bias.copy_(bias)  # type: ignore[union-attr]
        weight_norm(layer)
        if zero:
            with torch.no_grad():
                layer.parametrizations.weight.original0.zero_()  # type: ignore[union-attr,operator]
