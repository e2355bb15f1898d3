"""Havtorn et al. (2021): the hierarchical likelihood ratio ``LLR^{>k}`` of a hierarchical VAE.

Havtorn, Frellsen, Hauberg & Maaløe, "Hierarchical VAEs know what they don't know" (ICML 2021).
Raw likelihoods fail on FashionMNIST vs MNIST because they are dominated by low-level features
that generalise across data sets. ``L^{>k}`` bounds ``log p(x)`` with the ``k`` lowest latents
drawn from the conditional prior, so only the high-level (semantic) latents see ``x``;

    s(x) = LLR^{>k}(x) = ELBO(x) - L^{>k}(x)     (nats)

is large when the high-level latents of ``x`` do not predict its low-level ones, i.e. when ``x``
is not in-distribution at every feature level: higher = more anomalous, as the paper uses it.
The model is a :class:`~genood.models.hvae.HierarchicalVAE` (any model with ``llr(x, k, ...)``
and ``num_latents`` works). Both bounds are estimated by sampling; the detector draws with a
fixed seed by default, so that scores are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats


@dataclass(frozen=True, eq=False)
class HierarchicalBound(Requirement):
    """``LLR^{>k}`` of every image under a hierarchical VAE, under ``llr/<key>``."""

    k: int = 1
    samples: int = 1
    prior_mode: bool = False
    seed: int | None = 0

    @property
    def key(self) -> str:
        mode = ".mode" if self.prior_mode else ""
        return f"k{self.k}.s{self.samples}{mode}.seed{self.seed}"

    @property
    def cacheable(self) -> bool:
        return self.seed is not None

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        model = self.model
        assert model is not None
        model.eval()
        devices = [model.device] if model.device.type == "cuda" else []
        scores = []
        with torch.random.fork_rng(devices=devices, enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            starts = range(0, len(images), settings.batch_size)
            with torch.inference_mode():
                for start in tqdm(starts, desc=f"LLR>{self.k}", disable=not settings.progress):
                    batch = torch.from_numpy(images[start : start + settings.batch_size])
                    x = model.preprocess(batch, dequantize=False)
                    llr = model.llr(x, self.k, self.samples, self.prior_mode)  # type: ignore[operator]
                    scores.append(llr.double().cpu().numpy())
        return {self.key: np.concatenate(scores)}


class HierarchicalLLR(Detector):
    """Score ``LLR^{>k} = ELBO - L^{>k}`` in nats under a hierarchical VAE.

    Args:
        model: a hierarchical VAE (``genood.models.build("hvae", ...)``).
        k: the number of lowest latents drawn from the conditional prior, ``1 .. L``
            (the paper: ``k = 1`` for its 3-layer HVAE, ``k = 2`` for BIVA).
        samples: importance samples per bound (1: one draw each, analytic KLs; the paper's
            default).
        prior_mode: use the conditional prior's mean instead of a sample for the ``k`` lowest
            latents (as the authors' code does).
        seed: seed of the sampling while scoring (``None``: the global RNG, not reproducible,
            and never cached).
        store: see :class:`~genood.ood.base.Detector`.
    """

    name = "llr"
    summary = (
        "ELBO minus the L^{>k} bound of a hierarchical VAE (Havtorn et al. 2021); K lowest "
        "latents from the conditional prior (default 1), mode: its mean, as the authors' code"
    )
    grammar = "llr[:K[:mode]]"
    unit = "nats"
    model_family = "hvae"

    def __init__(
        self,
        model: LikelihoodModel,
        *,
        k: int = 1,
        samples: int = 1,
        prior_mode: bool = False,
        seed: int | None = 0,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if not hasattr(model, "llr") or not hasattr(model, "num_latents"):
            raise TypeError(
                f"the llr score needs a hierarchical VAE (model 'hvae'), got "
                f"{type(model).__name__}, which has no L^{{>k}} bounds"
            )
        layers = int(model.num_latents)  # type: ignore[attr-defined,arg-type]
        if not 1 <= k <= layers:
            raise ValueError(f"k must be in 1..{layers} for a {layers}-layer model, got {k}")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.model = model
        self.k = k
        self.samples = samples
        self.prior_mode = prior_mode
        self.seed = seed

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        k = options[0] if options else "1"
        variant = options[1] if len(options) > 1 else ""
        if len(options) > 2 or not k.isdigit() or int(k) < 1 or variant not in ("", "mode"):
            raise ValueError(
                "llr takes llr:K or llr:K:mode with a number of latents K >= 1, got "
                + ":".join([cls.name, *options])
            )
        return {"k": int(k), "prior_mode": variant == "mode"}

    def _bound(self) -> HierarchicalBound:
        return HierarchicalBound(
            "llr", self.model, self.k, self.samples, self.prior_mode, self.seed
        )

    def requirements(self) -> list[Requirement]:
        return [self._bound()]

    def _score(self, stats: Stats) -> np.ndarray:
        return self.stat(stats, f"llr/{self._bound().key}")
