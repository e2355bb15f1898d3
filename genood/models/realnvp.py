"""RealNVP (Dinh, Sohl-Dickstein & Bengio, ICLR 2017) as ``build("realnvp", ...)``.

Multi-scale architecture of the paper (section 3.6): at each scale but the last,
``steps`` affine couplings with alternating checkerboard masks, a squeeze, ``steps`` couplings
with alternating channel masks, then half of the channels are factored out; the last scale has
``steps + 1`` checkerboard couplings (the paper: 3, 3 and 4). Couplings use
``log s = scale * tanh(h)`` and residual coupling networks.

Departures from the paper, stated: the batch normalisation of the paper (both in the coupling
networks and as flow layers after the couplings) is replaced by ActNorm, whose data-dependent
initialisation gives the same normalised start without batch statistics at test time; weight
normalisation is not used. The prior is the paper's standard normal unless ``learn_prior``.

Hyper-parameters:
    levels: scales (``H``, ``W`` divisible by ``2^(levels - 1)``).
    steps: couplings per mask group (paper: 3).
    hidden: feature maps of the residual networks (paper: 64).
    blocks: residual blocks per coupling network (paper: 8 on CIFAR-10, 2 on small images).
    coupling: ``affine`` only (accepted so that scripts can pass Glow's keyword set).
    learn_prior: Glow-style learned priors instead of the standard normal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from genood.flows.actnorm import ActNorm
from genood.flows.base import Flow, Sequential
from genood.flows.masks import MaskedAffineCoupling, channel_mask, checkerboard_mask
from genood.flows.multiscale import MultiScaleFlow
from genood.flows.nets import ResNetCouplingNet
from genood.flows.reshape import Squeeze
from genood.models.flow_model import FlowModel
from genood.models.hparams import check_choice, check_positive, parse_hparams
from genood.models.registry import register


@dataclass(frozen=True)
class RealNVPHparams:
    """RealNVP's hyper-parameters (defaults: the paper's small-image setting)."""

    levels: int = 3
    steps: int = 3
    hidden: int = 64
    blocks: int = 2
    coupling: str = "affine"
    learn_prior: bool = False


def _coupling_with_norm(
    mask_kind: str, parity: int, shape: tuple[int, int, int], hp: RealNVPHparams
) -> Flow:
    channels, height, width = shape
    if mask_kind == "checkerboard":
        mask = checkerboard_mask(height, width, parity)
    else:
        mask = channel_mask(channels, parity)
    net = ResNetCouplingNet(channels, 2 * channels, hp.hidden, hp.blocks, actnorm=True)
    return Sequential([MaskedAffineCoupling(mask, channels, net, scale="tanh"), ActNorm(channels)])


def realnvp_flow(image_shape: tuple[int, int, int], hp: RealNVPHparams) -> MultiScaleFlow:
    """The multi-scale RealNVP flow for ``image_shape`` (see the module doc)."""
    check_positive("realnvp", levels=hp.levels, steps=hp.steps, hidden=hp.hidden)
    check_choice("realnvp", "coupling", hp.coupling, ("affine",))
    if hp.blocks < 0:
        raise ValueError(f"realnvp: blocks must be >= 0, got {hp.blocks}")
    channels, height, width = image_shape
    factor = 2 ** (hp.levels - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"realnvp with levels={hp.levels} needs H and W divisible by {factor}, got "
            f"{height}x{width}: pad the images (data.pad_to) or use fewer levels"
        )
    levels: list[Flow] = []
    shapes: list[tuple[int, int, int]] = []
    shape = (channels, height, width)
    for i in range(hp.levels):
        last = i == hp.levels - 1
        n_checker = hp.steps + 1 if last else hp.steps
        layers: list[Flow] = [
            _coupling_with_norm("checkerboard", k % 2, shape, hp) for k in range(n_checker)
        ]
        if not last:
            layers.append(Squeeze())
            c, h, w = shape
            shape = (4 * c, h // 2, w // 2)
            layers += [_coupling_with_norm("channel", k % 2, shape, hp) for k in range(hp.steps)]
        levels.append(Sequential(layers))
        shapes.append(shape)
        if not last:
            shape = (shape[0] // 2, shape[1], shape[2])
    return MultiScaleFlow(image_shape, levels, shapes, learn_prior=hp.learn_prior)


@register("realnvp")
def build_realnvp(image_shape: tuple[int, int, int], **hparams: Any) -> FlowModel:
    """RealNVP for ``image_shape``; see the module doc for the hyper-parameters."""
    hp = parse_hparams(RealNVPHparams, "realnvp", hparams)
    return FlowModel(image_shape, realnvp_flow(image_shape, hp), "realnvp", dataclasses.asdict(hp))


__all__ = ["RealNVPHparams", "build_realnvp", "realnvp_flow"]
