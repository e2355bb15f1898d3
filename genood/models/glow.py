"""Glow (Kingma & Dhariwal 2018) and the constant-volume CV-Glow of Nalisnick et al. (2019).

``build("glow", image_shape, **hparams)``: ``levels`` levels; each squeezes, then runs
``steps`` steps of ActNorm -> channel mixing -> coupling, and every level but the last factors
out half of its channels (multi-scale architecture, learned split priors). Defaults are openai/glow's
(3 levels x 32 steps, width 512, affine coupling, LU 1x1 convolutions, learned top prior).

``build("cv-glow", ...)``: Nalisnick et al.'s constant-volume Glow (section 5): additive couplings
only. ActNorm and the 1x1 convolutions have input-independent log-dets and the priors belong to
the distribution term, so the volume term ``logdet`` is the same for every input.

``build("realnvp", ...)`` lives in :mod:`genood.models.realnvp`.

Hyper-parameters (keyword names shared by configs and scripts):
    levels: multi-scale levels ``L`` (``H`` and ``W`` must be divisible by ``2^L``).
    steps: steps of flow per level ``K``.
    hidden: width of the coupling networks.
    coupling: ``affine`` (Glow's ``sigmoid(h + 2)`` scale) or ``additive``.
    permutation: ``lu`` (LU 1x1 convolution), ``conv`` (plain 1x1 convolution, ``slogdet``),
        ``reverse`` or ``shuffle`` (fixed permutations).
    learn_prior: learned top prior and conditional split priors (else standard normal).
    nn_actnorm: ActNorm inside the coupling networks, as openai/glow does.
    actnorm_scale: the output std of ActNorm's data-dependent initialisation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from genood.flows.actnorm import ActNorm
from genood.flows.base import Flow, Sequential
from genood.flows.coupling import AdditiveCoupling, AffineCoupling
from genood.flows.multiscale import MultiScaleFlow
from genood.flows.nets import GlowCouplingNet
from genood.flows.permutation import ChannelPermutation, InvertibleConv1x1, LUInvertibleConv1x1
from genood.flows.reshape import Squeeze
from genood.flows.step import GlowStep
from genood.models.flow_model import FlowModel
from genood.models.hparams import check_choice, check_positive, parse_hparams
from genood.models.registry import register

COUPLINGS = ("affine", "additive")
PERMUTATIONS = ("lu", "conv", "reverse", "shuffle")


@dataclass(frozen=True)
class GlowHparams:
    """Glow's hyper-parameters; the defaults are openai/glow's."""

    levels: int = 3
    steps: int = 32
    hidden: int = 512
    coupling: str = "affine"
    permutation: str = "lu"
    learn_prior: bool = True
    nn_actnorm: bool = False
    actnorm_scale: float = 1.0


def _mixing(kind: str, channels: int) -> Flow:
    if kind == "lu":
        return LUInvertibleConv1x1(channels)
    if kind == "conv":
        return InvertibleConv1x1(channels)
    return ChannelPermutation(channels, kind)


def _coupling(hp: GlowHparams, channels: int) -> Flow:
    cond = channels // 2
    transformed = channels - cond
    if hp.coupling == "affine":
        net = GlowCouplingNet(cond, 2 * transformed, hp.hidden, actnorm=hp.nn_actnorm)
        return AffineCoupling(channels, net, scale="sigmoid")
    net = GlowCouplingNet(cond, transformed, hp.hidden, actnorm=hp.nn_actnorm)
    return AdditiveCoupling(channels, net)


def glow_flow(
    image_shape: tuple[int, int, int], hp: GlowHparams, model: str = "glow"
) -> MultiScaleFlow:
    """The multi-scale Glow flow for ``image_shape`` (see the module doc)."""
    check_positive(model, levels=hp.levels, steps=hp.steps, hidden=hp.hidden)
    check_choice(model, "coupling", hp.coupling, COUPLINGS)
    check_choice(model, "permutation", hp.permutation, PERMUTATIONS)
    channels, height, width = image_shape
    factor = 2**hp.levels
    if height % factor or width % factor:
        raise ValueError(
            f"{model} with levels={hp.levels} needs H and W divisible by {factor}, got "
            f"{height}x{width}: pad the images (data.pad_to) or use fewer levels"
        )
    levels: list[Flow] = []
    shapes: list[tuple[int, int, int]] = []
    c, h, w = channels, height, width
    for i in range(hp.levels):
        c, h, w = 4 * c, h // 2, w // 2
        steps = [
            GlowStep(ActNorm(c, hp.actnorm_scale), _mixing(hp.permutation, c), _coupling(hp, c))
            for _ in range(hp.steps)
        ]
        levels.append(Sequential([Squeeze(), *steps]))
        shapes.append((c, h, w))
        if i < hp.levels - 1:
            c = c // 2
    return MultiScaleFlow(image_shape, levels, shapes, learn_prior=hp.learn_prior)


@register("glow")
def build_glow(image_shape: tuple[int, int, int], **hparams: Any) -> FlowModel:
    """Glow for ``image_shape``; see the module doc for the hyper-parameters."""
    hp = parse_hparams(GlowHparams, "glow", hparams)
    return FlowModel(image_shape, glow_flow(image_shape, hp), "glow", dataclasses.asdict(hp))


@register("cv-glow")
def build_cv_glow(image_shape: tuple[int, int, int], **hparams: Any) -> FlowModel:
    """Constant-volume Glow: Glow with additive couplings only (``coupling`` must be additive)."""
    hparams = {"coupling": "additive", **hparams}
    hp = parse_hparams(GlowHparams, "cv-glow", hparams)
    if hp.coupling != "additive":
        raise ValueError(
            f"cv-glow is constant-volume: its couplings must be additive, got coupling={hp.coupling!r}"
        )
    return FlowModel(
        image_shape, glow_flow(image_shape, hp, "cv-glow"), "cv-glow", dataclasses.asdict(hp)
    )


__all__ = ["COUPLINGS", "PERMUTATIONS", "GlowHparams", "build_cv_glow", "build_glow", "glow_flow"]
