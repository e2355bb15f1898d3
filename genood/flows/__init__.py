"""Invertible layers: every layer maps ``x -> (z, logdet)`` (``logdet`` per sample, ``(B,)``)
and has an exact ``inverse(z) -> x``; see :mod:`genood.flows.base` for the contract.
"""

from genood.flows.actnorm import ActNorm, ActNormNet
from genood.flows.base import Flow, Sequential, zero_logdet
from genood.flows.coupling import AdditiveCoupling, AffineCoupling
from genood.flows.masks import MaskedAffineCoupling, channel_mask, checkerboard_mask
from genood.flows.multiscale import FlowOutput, MultiScaleFlow
from genood.flows.nets import GlowCouplingNet, ResNetCouplingNet, ZeroConv2d
from genood.flows.permutation import ChannelPermutation, InvertibleConv1x1, LUInvertibleConv1x1
from genood.flows.priors import ConditionalPrior, TopPrior
from genood.flows.reshape import FactorOut, Squeeze, squeeze, unsqueeze
from genood.flows.step import GlowStep

__all__ = [
    "ActNorm",
    "ActNormNet",
    "AdditiveCoupling",
    "AffineCoupling",
    "ChannelPermutation",
    "ConditionalPrior",
    "FactorOut",
    "Flow",
    "FlowOutput",
    "GlowCouplingNet",
    "GlowStep",
    "InvertibleConv1x1",
    "LUInvertibleConv1x1",
    "MaskedAffineCoupling",
    "MultiScaleFlow",
    "ResNetCouplingNet",
    "Sequential",
    "Squeeze",
    "TopPrior",
    "ZeroConv2d",
    "channel_mask",
    "checkerboard_mask",
    "squeeze",
    "unsqueeze",
    "zero_logdet",
]
