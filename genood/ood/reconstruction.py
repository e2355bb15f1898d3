"""Graham et al. (2023): reconstruction of an image from several noise levels of a diffusion model.

Graham, Pinaya, Tudosiu, Nachev, Ourselin & Cardoso, "Denoising diffusion models for
out-of-distribution detection" (CVPR workshops 2023; the authors' code, marksgraham/ddpm-ood,
was read for this module). The image is noised to each of several starting times and denoised
deterministically back; an in-distribution image comes back close to itself, an OOD image is
pulled towards the training data. With ``e_t(x)`` the mean squared error of the reconstruction
from time ``t`` (pixels on ``[0, 1]``), and ``mu_t``, ``s_t`` its mean and standard deviation
over held-out in-distribution images (``fit``),

    s(x) = mean_t (e_t(x) - mu_t) / s_t,

higher = more anomalous. The errors come from
:func:`genood.models.diffusion_ood.reconstruction_errors` (DDIM steps proportional to ``t``,
noise seeded and shared by every image). The authors add the same z-score of an LPIPS distance
(a pretrained VGG), which genood does not ship: this is their MSE-only variant. The model must be
a diffusion model (``genood.models.build("diffusion", ...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats

DEFAULT_LEVELS = (0.2, 0.4, 0.6, 0.8)
DEFAULT_STEPS = 5  # DDIM steps over the whole range: 1, 2, 3 and 4 from the default levels


def level_name(level: float) -> str:
    """The statistic's name for the starting time ``level``: ``t0.2``."""
    return f"t{level:g}"


@dataclass(frozen=True, eq=False)
class ReconstructionErrors(Requirement):
    """The per-level reconstruction errors, under ``recon/<key>/t<level>``."""

    levels: tuple[float, ...] = DEFAULT_LEVELS
    steps: int = DEFAULT_STEPS
    seed: int = 0

    @property
    def key(self) -> str:
        return f"steps{self.steps}.seed{self.seed}"

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        from genood.models.diffusion_ood import reconstruction_errors

        assert self.model is not None
        errors = reconstruction_errors(
            self.model,  # type: ignore[arg-type]
            images,
            self.levels,
            self.steps,
            self.seed,
            settings.batch_size,
        )
        return {f"{self.key}/{level_name(t)}": errors[:, i] for i, t in enumerate(self.levels)}


class DiffusionReconstruction(Detector):
    """Score the mean over noise levels of the z-scored reconstruction error.

    Args:
        model: a diffusion model.
        levels: starting times ``t in (0, 1]`` of the model's schedule.
        steps: DDIM steps over the whole range (a start at ``t`` takes ``round(t steps)``).
        seed: seeds the noise of every level (the same for every image).
        store: see :class:`~genood.ood.base.Detector`.

    Attributes:
        means_, stds_: ``mu_t`` and ``s_t`` per level, set by :meth:`fit`.
    """

    name = "reconstruction"
    summary = (
        "mean z-score of a diffusion model's reconstruction errors from several noise levels "
        "(Graham et al. 2023, MSE only)"
    )
    unit = "z-score"
    model_family = "diffusion"

    def __init__(
        self,
        model: LikelihoodModel,
        *,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
        steps: int = DEFAULT_STEPS,
        seed: int = 0,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        if not hasattr(model, "net") or not hasattr(model, "gamma"):
            raise TypeError(
                f"the reconstruction score needs a diffusion model (model 'diffusion'), got "
                f"{type(model).__name__}, which has no denoiser"
            )
        levels = tuple(float(t) for t in levels)
        if not levels or any(not 0.0 < t <= 1.0 for t in levels) or steps < 1:
            raise ValueError(
                f"need noise levels in (0, 1] and steps >= 1, got {list(levels)} and {steps}"
            )
        self.model = model
        self.levels = levels
        self.steps = steps
        self.seed = seed
        self.means_: np.ndarray | None = None
        self.stds_: np.ndarray | None = None

    def _errors_requirement(self) -> ReconstructionErrors:
        return ReconstructionErrors("recon", self.model, self.levels, self.steps, self.seed)

    def requirements(self) -> list[Requirement]:
        return [self._errors_requirement()]

    def _errors(self, stats: Stats) -> np.ndarray:
        key = self._errors_requirement().key
        return np.stack(
            [self.stat(stats, f"recon/{key}/{level_name(t)}") for t in self.levels], axis=1
        )

    def _fit(self, stats: Stats) -> None:
        errors = self._errors(stats)
        if len(errors) < 2:
            raise ValueError("the reconstruction score needs at least 2 fitting images")
        std = errors.std(axis=0, ddof=1)
        self.means_ = errors.mean(axis=0)
        self.stds_ = np.where(std > 0, std, 1.0)

    def _score(self, stats: Stats) -> np.ndarray:
        assert self.means_ is not None and self.stds_ is not None
        return ((self._errors(stats) - self.means_) / self.stds_).mean(axis=1)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.means_ is not None and self.stds_ is not None
        return {}, {"means": self.means_, "stds": self.stds_}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.means_ = arrays["means"]
        self.stds_ = arrays["stds"]
