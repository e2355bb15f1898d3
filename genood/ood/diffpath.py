"""Heng et al. (2024), DiffPath: the path of the probability-flow ODE of one diffusion model.

Heng, Thiery & Soh, "Out-of-distribution detection with a single unconditional diffusion model"
(NeurIPS 2024; the authors' code, clear-nus/diffpath, was read for this module). The image is
encoded by DDIM from ``t = 0`` to ``t = 1``; the noise predictions ``eps_i`` along the way
measure the ODE's rate of change, and their finite differences its curvature
(:func:`genood.models.diffusion_ood.path_statistics`):

    rate(x) = sqrt(sum_i |eps_i|^2),   curvature(x) = sqrt(sum_i |steps (eps_{i+1} - eps_i)|^2).

A kernel density ``q`` is fitted to the statistics of held-out in-distribution images and the
score is ``-log q``, higher = more anomalous. ``diffpath`` is the authors' DiffPath-1D (the
curvature alone; their ``eval_1d.py`` fits a KDE with a fixed bandwidth, here Scott's rule on
the curvature's scale); ``diffpath:2d`` fits a joint KDE to the rate and the curvature (the
authors' DiffPath-6D uses six such statistics with a Gaussian mixture). The model must be a
diffusion model (``genood.models.build("diffusion", ...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats

VARIANTS = {"1d": ("curvature",), "2d": ("rate", "curvature")}


@dataclass(frozen=True, eq=False)
class PathStatistics(Requirement):
    """DiffPath's rate and curvature, under ``path/steps<S>/rate`` and ``.../curvature``."""

    steps: int = 10

    @property
    def key(self) -> str:
        return f"steps{self.steps}"

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        from genood.models.diffusion_ood import path_statistics

        assert self.model is not None
        stats = path_statistics(self.model, images, self.steps, settings.batch_size)  # type: ignore[arg-type]
        return {f"{self.key}/{name}": value for name, value in stats.items()}


class DiffPath(Detector):
    """Score ``-log q`` of the DDIM path's statistics under a KDE of in-distribution ones.

    Args:
        model: a diffusion model.
        variant: ``1d`` (curvature, the authors' DiffPath-1D) or ``2d`` (rate and curvature).
        steps: DDIM steps of the encoding (the authors: 10).
        store: see :class:`~genood.ood.base.Detector`.

    Attributes:
        fit_statistics_: the fitting images' statistics ``(n, d)`` the KDE holds.
    """

    name = "diffpath"
    summary = (
        "-log KDE of the curvature of a diffusion model's DDIM path (Heng et al. 2024, "
        "DiffPath-1D); VARIANT 1d (default) or 2d (adds the path's rate of change)"
    )
    grammar = "diffpath[:VARIANT]"
    unit = "nats"
    model_family = "diffusion"
    memorises_fit_images = True

    def __init__(
        self,
        model: LikelihoodModel,
        *,
        variant: str = "1d",
        steps: int = 10,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if not hasattr(model, "net") or not hasattr(model, "gamma"):
            raise TypeError(
                f"the diffpath score needs a diffusion model (model 'diffusion'), got "
                f"{type(model).__name__}, which has no denoiser"
            )
        if variant not in VARIANTS:
            raise ValueError(f"diffpath variant must be one of {list(VARIANTS)}, got {variant!r}")
        if steps < 2:
            raise ValueError(f"diffpath needs at least 2 DDIM steps for a curvature, got {steps}")
        self.model = model
        self.variant = variant
        self.steps = steps
        self.fit_statistics_: np.ndarray | None = None
        self._kde: gaussian_kde | None = None

    @classmethod
    def parse_options(cls, options: list[str], codec: str = "png") -> dict[str, Any]:
        if len(options) > 1 or (options and options[0] not in VARIANTS):
            raise ValueError(
                "diffpath takes diffpath, diffpath:1d or diffpath:2d, got "
                + ":".join([cls.name, *options])
            )
        return {"variant": options[0]} if options else {}

    @property
    def label(self) -> str:
        return self.name if self.variant == "1d" else f"{self.name}:{self.variant}"

    def requirements(self) -> list[Requirement]:
        return [PathStatistics("path", self.model, self.steps)]

    def _points(self, stats: Stats) -> np.ndarray:
        return np.stack(
            [self.stat(stats, f"path/steps{self.steps}/{n}") for n in VARIANTS[self.variant]]
        )

    def _fit(self, stats: Stats) -> None:
        points = self._points(stats)
        if points.shape[1] <= points.shape[0]:
            raise ValueError(f"diffpath needs more than {points.shape[0]} fitting images")
        self.fit_statistics_ = points.T
        self._build()

    def _build(self) -> None:
        assert self.fit_statistics_ is not None
        self._kde = gaussian_kde(self.fit_statistics_.T)

    def _score(self, stats: Stats) -> np.ndarray:
        assert self._kde is not None
        return -self._kde.logpdf(self._points(stats))

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.fit_statistics_ is not None
        return {}, {"fit_statistics": self.fit_statistics_}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.fit_statistics_ = arrays["fit_statistics"]
        self._build()
