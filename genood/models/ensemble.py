"""An ensemble of independently trained likelihood models of one kind.

``log_prob_terms`` gives the members' *mean* log-likelihood,

    mean_log_prob(x) = (1/M) sum_m log p_m(x),

which is what WAIC (Choi et al. 2018) and the paper's ensemble analysis average. By Jensen's
inequality it lower-bounds the log-density of the uniform mixture ``(1/M) sum_m p_m(x)``
(:meth:`Ensemble.mixture_log_prob`), the distribution :meth:`Ensemble.sample` draws from, so
the ensemble reports ``is_bound = True``. :meth:`Ensemble.member_log_probs` gives the
per-member values, shape ``(M, B)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genood.models.base import LikelihoodModel


class Ensemble(LikelihoodModel):
    """``M >= 2`` likelihood models over the same images, preprocessing and bits/dim scale."""

    is_bound = True

    def __init__(self, members: Sequence[LikelihoodModel]) -> None:
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        for i, member in enumerate(members):
            if not isinstance(member, LikelihoodModel):
                raise TypeError(
                    f"ensemble member {i} is a {type(member).__name__}, "
                    "not a genood LikelihoodModel"
                )
        first = members[0]
        super().__init__(first.image_shape)
        for i, member in enumerate(members[1:], start=1):
            if tuple(member.image_shape) != tuple(first.image_shape):
                raise ValueError(
                    f"ensemble member {i} sees images of shape {member.image_shape}, member 0 "
                    f"sees {first.image_shape}; all members must see the same images"
                )
            if member.log_scale != first.log_scale or (
                type(member).preprocess is not type(first).preprocess
            ):
                raise ValueError(
                    f"ensemble member {i} ({type(member).__name__}) preprocesses or scales "
                    f"images unlike member 0 ({type(first).__name__}); their log-likelihoods "
                    "are not comparable"
                )
        self.members = nn.ModuleList(members)
        self.models: list[LikelihoodModel] = list(members)  # the same modules, typed
        self.log_scale = first.log_scale
        self.is_bound = True

    def __len__(self) -> int:
        return len(self.members)

    def preprocess(
        self, images: Tensor, dequantize: bool, generator: torch.Generator | None = None
    ) -> Tensor:
        """The members' shared preprocessing (member 0's, identical for all)."""
        return self.models[0].preprocess(images, dequantize, generator)

    def postprocess(self, x: Tensor) -> Tensor:
        return self.models[0].postprocess(x)

    def member_log_probs(self, x: Tensor) -> Tensor:
        """``log p_m(x)`` of every member in nats, shape ``(M, B)``."""
        return torch.stack([member.log_prob(x) for member in self.models])

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """One term, ``mean_log_prob``: the members' mean log-likelihood (see module doc)."""
        return {"mean_log_prob": self.member_log_probs(x).mean(dim=0)}

    def mixture_log_prob(self, x: Tensor) -> Tensor:
        """``log (1/M) sum_m p_m(x)``, the uniform mixture's log-density, shape ``(B,)``."""
        return torch.logsumexp(self.member_log_probs(x), dim=0) - math.log(len(self.members))

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` draws from the uniform mixture: a random member for each sample."""
        which = torch.randint(len(self.members), (n,))
        samples: Tensor | None = None
        for m, member in enumerate(self.models):
            index = (which == m).nonzero(as_tuple=True)[0]
            if len(index) == 0:
                continue
            drawn = member.sample(len(index), temperature)
            if samples is None:
                samples = drawn.new_empty((n, *drawn.shape[1:]))
            samples[index.to(drawn.device)] = drawn
        assert samples is not None
        return samples

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "members": len(self.members),
            "member_model": type(self.members[0]).__name__,
        }
