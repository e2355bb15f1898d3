"""A Bernoulli likelihood per binary sub-pixel, for models of binarised images.

``p(b | logits) = prod_d sigmoid(l_d)^{b_d} (1 - sigmoid(l_d))^{1 - b_d}`` over ``b in {0, 1}^D``
(JakobHavtorn/hvae-oodd, ``oodd/layers/likelihoods.py``, ``BernoulliLikelihoodConv2d``).
``log p`` is a probability mass over the ``2^D`` binary images, so a model with this decoder has
``log_scale = 0`` and its bits/dim are **bits per binary pixel**, ``-log2 P(b) / D``: at most
1 (a fair coin per pixel), and not comparable with bits/dim of 8-bit data (which count the
256 levels of each sub-pixel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class BernoulliPixels:
    """Independent Bernoulli sub-pixels with logits ``(B, C, H, W)``; the decoder's output head.

    Args:
        channels: ``C``, sub-pixels per pixel (one logit each).
    """

    def __init__(self, channels: int) -> None:
        if channels < 1:
            raise ValueError(f"need channels >= 1, got {channels}")
        self.channels = channels

    @property
    def num_params(self) -> int:
        """Channels of the parameter tensor a network must output (one logit per sub-pixel)."""
        return self.channels

    def log_prob(self, x: Tensor, logits: Tensor) -> Tensor:
        """``log p(x)`` in nats, ``(B,)``, of binary ``x`` in ``{0, 1}``."""
        if logits.shape != x.shape:
            raise ValueError(
                f"expected logits of shape {tuple(x.shape)} for these images, got "
                f"{tuple(logits.shape)}"
            )
        logits = logits.float()
        bce = F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")
        return -bce.flatten(1).sum(dim=1)

    @torch.no_grad()
    def sample(self, logits: Tensor) -> Tensor:
        """``b ~ Bernoulli(sigmoid(logits))`` in ``{0, 1}``, float."""
        return torch.bernoulli(torch.sigmoid(logits.float()))


__all__ = ["BernoulliPixels"]
