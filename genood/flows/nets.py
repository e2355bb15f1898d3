"""The networks inside coupling layers (they need not be invertible).

* :class:`ZeroConv2d`: Glow's ``conv2d_zeros``, a 3x3 convolution initialised to zero with a
  learned per-channel output scale ``exp(3 * logs)``, so that a new coupling is the identity. It
  produces the coupling's shift and scale directly: its convolution runs in the autocast dtype
  (accumulating in float32) and its output is upcast to float32 before the scale. Running this
  convolution in float32 instead made bf16 training 1.25x slower (its backward with 4 output
  channels is slow in oneDNN) and did not bring bf16 scoring closer to fp32 (per-sample max
  difference 0.004-0.005 bits/dim either way on a partly trained Glow; benchmarks/RESULTS.md).
* :class:`GlowCouplingNet`: conv3x3 -> ReLU -> conv1x1 -> ReLU -> ZeroConv2d (Kingma &
  Dhariwal 2018, section 3.3), optionally with ActNorm after the hidden convolutions as in
  openai/glow.
* :class:`ResNetCouplingNet`: a small residual network for RealNVP (Dinh et al. 2017, section
  4.1), with ActNorm in place of their batch normalisation.

They are plain convolutions and ReLUs, so they run well under bf16/fp16 autocast and in the
channels-last memory format; the coupling's shift and scale leave them in float32.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genood.flows.actnorm import ActNormNet


class ZeroConv2d(nn.Module):
    """Zero-initialised convolution with a learned output scale: ``conv(x) * exp(3 * logs)``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size (zero padding keeps the spatial size).
        logscale_factor: Glow's factor 3, which speeds up learning of the output scale.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        logscale_factor: float = 3.0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)  # type: ignore[arg-type]  # bias=True: never None
        self.logs = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.logscale_factor = logscale_factor

    def forward(self, x: Tensor) -> Tensor:
        # The convolution runs in the autocast dtype (oneDNN and cuDNN accumulate in float32);
        # its output is upcast before the learned scale, so shift and log-scale leave in float32.
        out = self.conv(x)
        out = out.to(torch.promote_types(out.dtype, torch.float32))
        return out * (self.logs * self.logscale_factor).exp().to(out.dtype)


class ConvActNorm(nn.Sequential):
    """A bias-free convolution followed by ActNorm, computed as one convolution.

    ``conv(x, w) * exp(log_scale) + bias == conv(x, w * exp(log_scale)) + bias``, so once the
    ActNorm is initialised the scale is folded into the weight (a product over the small
    weight, not the activations) and the bias becomes the convolution's. This saves a pass over
    the hidden activations forward and two backward, in training and in scoring; gradients
    reach ``log_scale`` and ``bias`` through the folded weight and bias. The first training
    batch runs unfolded, for ActNorm's data-dependent initialisation. The children keep
    ``nn.Sequential``'s indices (``0``: the convolution, ``1``: the ActNorm), so state dicts
    are those of ``nn.Sequential(conv, ActNormNet(...))``.
    """

    def __init__(self, conv: nn.Conv2d, norm: ActNormNet) -> None:
        if conv.bias is not None or conv.padding_mode != "zeros":
            raise ValueError("ConvActNorm needs a bias-free, zero-padded convolution")
        super().__init__(conv, norm)

    def forward(self, x: Tensor) -> Tensor:
        conv, norm = cast(nn.Conv2d, self[0]), cast(ActNormNet, self[1])
        if norm.training and not norm.is_initialized:
            return norm(conv(x))
        weight = conv.weight * norm.log_scale.exp().reshape(-1, 1, 1, 1)
        bias = norm.bias.reshape(-1)
        padding = cast(tuple[int, int], conv.padding)  # ints: never "same"/"valid" here
        return F.conv2d(x, weight, bias, conv.stride, padding, conv.dilation, conv.groups)


def _conv(in_channels: int, out_channels: int, kernel_size: int, actnorm: bool) -> nn.Module:
    # With ActNorm after it, a bias would be redundant (openai/glow does the same).
    conv = nn.Conv2d(
        in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not actnorm
    )
    if actnorm:
        nn.init.normal_(conv.weight, 0.0, 0.05)
        return ConvActNorm(conv, ActNormNet(out_channels))
    return conv


class GlowCouplingNet(nn.Module):
    """Glow's coupling network ``NN()``: conv3x3 -> ReLU -> conv1x1 -> ReLU -> ZeroConv2d.

    Args:
        in_channels: channels of the conditioning half.
        out_channels: channels of the output (``2 x`` the transformed half for affine couplings).
        hidden: width of the hidden layers (Glow: 512).
        actnorm: follow each hidden convolution with ActNorm, as openai/glow does.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, actnorm: bool = False
    ) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be a positive width, got {hidden}")
        self.net = nn.Sequential(
            _conv(in_channels, hidden, 3, actnorm),
            nn.ReLU(inplace=True),
            _conv(hidden, hidden, 1, actnorm),
            nn.ReLU(inplace=True),
            ZeroConv2d(hidden, out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _ResidualBlock(nn.Module):
    def __init__(self, hidden: int, actnorm: bool) -> None:
        super().__init__()
        self.conv1 = _conv(hidden, hidden, 3, actnorm)
        self.conv2 = _conv(hidden, hidden, 3, actnorm)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.relu(x))
        return x + self.conv2(F.relu(h))


class ResNetCouplingNet(nn.Module):
    """RealNVP's residual coupling network: conv3x3, ``blocks`` residual blocks, ZeroConv2d.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        hidden: feature maps (RealNVP: 64).
        blocks: residual blocks (RealNVP: 8 on CIFAR-10, 2 on small images).
        actnorm: ActNorm after each hidden convolution (RealNVP uses batch normalisation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        blocks: int = 2,
        actnorm: bool = True,
    ) -> None:
        super().__init__()
        if hidden < 1 or blocks < 0:
            raise ValueError(
                f"need hidden >= 1 and blocks >= 0, got hidden={hidden}, blocks={blocks}"
            )
        self.stem = _conv(in_channels, hidden, 3, actnorm)
        self.blocks = nn.Sequential(*(_ResidualBlock(hidden, actnorm) for _ in range(blocks)))
        self.head = ZeroConv2d(hidden, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.relu(self.blocks(self.stem(x))))


__all__ = ["ConvActNorm", "GlowCouplingNet", "ResNetCouplingNet", "ZeroConv2d"]
