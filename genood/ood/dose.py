"""Morningstar et al. (2021): density of states, a typicality test over several statistics.

Morningstar, Ham, Gallagher, Lakshminarayanan, Alemi & Dillon, "Density of states estimation for
out-of-distribution detection" (AISTATS 2021). A single number such as bits/dim can be typical
for an OOD input by coincidence (MNIST under a FashionMNIST Glow is *more* likely, and the
typicality test's window is one-dimensional). DoSE describes each input by several statistics
of the model and asks how typical the *vector* is: fit a density ``q`` to the statistics of
held-out in-distribution images and score

    s(x) = -log q(T(x)),

higher = more anomalous. ``T(x)`` holds every term of the model's ``log_prob_terms`` (for a flow
the distribution term ``log p(z)`` and the volume term ``log |det J|``; for a VAE its ELBO
terms; a single-term model contributes its ``log p(x)``), each replaced by its parts where the
model gives them (``log_prob_parts``: a multi-scale flow's ``log p(z_i | ...)`` level by level,
as Morningstar et al. use statistics of several layers), and, with ``codec``, the input
complexity ``L(x) / D`` of Serra et al. (2020) in bits/dim. ``q`` is a Gaussian kernel density
estimate with a full bandwidth matrix (``scipy.stats.gaussian_kde``: the statistics' covariance
times Scott's factor squared), so that correlated statistics are handled jointly; the product
of one-dimensional estimates in Morningstar et al.'s DoSE-KDE ignores those correlations.

The test is two-sided in every direction: too simple, too complex, and a wrong balance between
the terms are all atypical. Statistics that are constant on the fitting images (the volume
term of a constant-volume flow) carry no information and are dropped, with their names kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import gaussian_kde

from genood.models.base import LikelihoodModel
from genood.models.scoring import NOT_TERMS
from genood.ood.base import Detector
from genood.ood.complexity import CODECS, check_codec
from genood.ood.statistics import (
    Requirement,
    Statistics,
    Stats,
    codec_length,
    count,
    model_pass,
)

PARTS_CHOICES = ("auto", "parts", "terms")


class DensityOfStates(Detector):
    """Score ``-log q(T(x))``: a joint KDE over the model's terms (and ``L(x)/D`` with a codec).

    Args:
        model: any genood likelihood model.
        codec: add Serra et al.'s complexity ``L(x)/D`` with this lossless codec; ``None``:
            the model's terms only.
        parts: ``auto`` replaces each term by its parts where the model gives them (per-level
            distribution terms of a multi-scale flow); ``parts`` requires parts and refuses a
            model without them; ``terms`` uses the terms as they are.
        bandwidth: ``scott``, ``silverman`` or a scalar factor (see ``gaussian_kde``).
        max_fit: use at most this many fitting images (a seeded subset) for the estimate.
        seed: the subset's seed.

    Attributes:
        statistics_: the statistics used, in column order.
        dropped_: statistics found constant on the fitting images.
    """

    name = "dos"
    summary = (
        "-log density of the model's terms (a flow's log p(z) level by level, its log-det) and "
        "the codec's bits/dim, a joint KDE (Morningstar et al. 2021); CODEC none: terms only; "
        "VARIANT parts (require per-level parts) or terms (no per-level split)"
    )
    grammar = "dos[:CODEC[:VARIANT]]"
    unit = "nats (-log density of the statistics)"
    memorises_fit_images = True

    def __init__(
        self,
        model: LikelihoodModel,
        codec: str | None = "png",
        *,
        parts: str = "auto",
        bandwidth: str | float = "scott",
        max_fit: int = 10000,
        seed: int = 0,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if codec is not None:
            check_codec(codec)
        if parts not in PARTS_CHOICES:
            raise ValueError(f"parts must be one of {', '.join(PARTS_CHOICES)}, got {parts!r}")
        if isinstance(bandwidth, str) and bandwidth not in ("scott", "silverman"):
            raise ValueError(f"bandwidth must be scott, silverman or a number, got {bandwidth!r}")
        if max_fit < 2:
            raise ValueError(f"max_fit must be at least 2, got {max_fit}")
        self.model = model
        self.codec = codec
        self.parts = parts
        self.bandwidth = bandwidth
        self.max_fit = max_fit
        self.seed = seed
        self.statistics_: list[str] = []
        self.dropped_: list[str] = []
        self.fit_statistics_: np.ndarray | None = None
        self._kde: gaussian_kde | None = None

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        if len(options) > 2 or (len(options) == 2 and options[1] not in PARTS_CHOICES[1:]):
            raise ValueError(
                f"dos takes dos:CODEC, dos:CODEC:parts or dos:CODEC:terms (CODEC none: no "
                f"codec), got {':'.join([cls.name, *options])}"
            )
        chosen = (options[0] if options else "") or codec
        if chosen != "none" and chosen not in CODECS:
            raise ValueError(f"unknown codec {chosen!r}; known: none, {', '.join(sorted(CODECS))}")
        variant = options[1] if len(options) == 2 else "auto"
        return {"codec": None if chosen == "none" else chosen, "parts": variant}

    def requirements(self) -> list[Requirement]:
        needed: list[Requirement] = [model_pass(self.model)]
        return needed + ([codec_length(self.codec)] if self.codec is not None else [])

    def candidates(self, stats: Stats) -> dict[str, np.ndarray]:
        """Every candidate statistic, ``name -> (N,)``: the model's terms, their parts
        (``<term>.<part>``) and, with a codec, ``codec_bits_per_dim``."""
        prefix = "model/"
        values = {
            key[len(prefix) :]: np.asarray(value, dtype=np.float64)
            for key, value in stats.items()
            if key.startswith(prefix) and key[len(prefix) :] not in NOT_TERMS
        }
        values = values or {"log_prob": self.stat(stats, "model/log_prob")}
        if self.codec is not None:
            bits = self.stat(stats, f"codec/{self.codec}")
            values["codec_bits_per_dim"] = bits / self.model.num_dims
        return values

    def _chosen(self, names: list[str]) -> list[str]:
        """A term or its parts, never both: the parts sum to the term (a singular covariance)."""
        refined = {k.partition(".")[0] for k in names if "." in k}
        if self.parts == "parts" and not refined:
            raise ValueError(
                f"dos:{self.codec or 'none'}:parts needs per-level parts of the model's terms, and "
                f"{type(self.model).__name__} gives none; use dos (its terms) instead"
            )
        if self.parts == "terms":
            return [k for k in names if "." not in k]
        return [k for k in names if k not in refined]

    def _fit(self, stats: Stats) -> None:
        n = count(stats)
        if n > self.max_fit:
            keep = np.sort(np.random.default_rng(self.seed).choice(n, self.max_fit, False))
            stats = {key: value[keep] for key, value in stats.items()}
        values = self.candidates(stats)
        names = self._chosen(list(values))
        kept = [k for k in names if np.std(values[k]) > 1e-9 * (1.0 + np.abs(values[k]).mean())]
        if not kept:
            raise ValueError("every statistic is constant on the fitting images: nothing to fit")
        if min(n, self.max_fit) <= len(kept):
            raise ValueError(
                f"DoSE needs more fitting images than statistics ({len(kept)}), got {n}"
            )
        self.statistics_ = kept
        self.dropped_ = [k for k in names if k not in kept]
        self.fit_statistics_ = np.stack([values[k] for k in kept], axis=1)
        self._build()

    def _build(self) -> None:
        assert self.fit_statistics_ is not None
        self._kde = gaussian_kde(self.fit_statistics_.T, bw_method=self.bandwidth)

    def _score(self, stats: Stats) -> np.ndarray:
        assert self._kde is not None
        values = self.candidates(stats)
        missing = [k for k in self.statistics_ if k not in values]
        if missing:
            raise ValueError(f"the model no longer returns the statistics {missing}")
        points = np.stack([values[k] for k in self.statistics_], axis=0)
        return -self._kde.logpdf(points)

    # ------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.fit_statistics_ is not None
        values = {"statistics": self.statistics_, "dropped": self.dropped_}
        return values, {"fit_statistics": self.fit_statistics_}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.statistics_ = list(values["statistics"])
        self.dropped_ = list(values["dropped"])
        self.fit_statistics_ = arrays["fit_statistics"]
        self._build()
