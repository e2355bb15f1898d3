"""Ren et al. (2019): the likelihood ratio against a background model of mutated inputs.

Ren, Liu, Fertig, Snoek, Poplin, DePristo, Dillon & Lakshminarayanan, "Likelihood ratios for
out-of-distribution detection" (NeurIPS 2019). A likelihood mixes *population-level background
statistics* (smoothness, the share of dark pixels) with the *semantic* content that tells
in- from out-of-distribution. A background model ``p_0`` of the same architecture, trained on
inputs whose sub-pixels were replaced by uniform random values with rate ``mu`` (0.1-0.3),
learns the former but not the latter, and the ratio cancels it:

    LLR(x) = log p(x) - log p_0(x).

The score is ``-LLR / (D log 2) = bpd(x) - bpd_0(x)``, in bits/dim, higher = more anomalous.
The background model is trained by ``genood train-background --run RUN`` into ``RUN/background``
with :func:`mutate` applied to every training batch.
"""

from __future__ import annotations

import numpy as np
import torch

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats, model_pass


def mutate(
    images: np.ndarray, rate: float, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Replace each sub-pixel of uint8 ``images`` by a uniform value in 0..255 with prob ``rate``.

    This is Ren et al.'s perturbation for the background model's training data. A copy is
    returned; ``images`` is left untouched.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"mutation rate must be in [0, 1], got {rate}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise TypeError("mutate expects a uint8 numpy array of images")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    mask = rng.random(images.shape) < rate
    noise = rng.integers(0, 256, size=images.shape, dtype=np.uint8)
    return np.where(mask, noise, images)


def check_same_architecture(model: LikelihoodModel, background: LikelihoodModel) -> None:
    """Raise unless ``background`` has the class, image shape and parameter shapes of ``model``.

    Ren et al.'s ratio cancels background statistics only between models of one architecture;
    a different background model would measure the architectures' difference instead.
    """
    problems = []
    if type(model) is not type(background):
        problems.append(f"class {type(background).__name__} instead of {type(model).__name__}")
    if tuple(model.image_shape) != tuple(background.image_shape):
        problems.append(f"image shape {background.image_shape} instead of {model.image_shape}")
    if model.log_scale != background.log_scale:
        problems.append(f"log_scale {background.log_scale} instead of {model.log_scale}")
    if not problems:
        ours = _shapes(model)
        theirs = _shapes(background)
        if ours.keys() != theirs.keys():
            missing = sorted(ours.keys() - theirs.keys())[:3]
            extra = sorted(theirs.keys() - ours.keys())[:3]
            problems.append(f"other parameters (missing {missing}, unexpected {extra})")
        else:
            differ = [k for k in ours if ours[k] != theirs[k]]
            if differ:
                k = differ[0]
                problems.append(
                    f"{len(differ)} parameter shape(s) differ, e.g. {k}: {theirs[k]} "
                    f"instead of {ours[k]}"
                )
    if problems:
        raise ValueError(
            "the background model must have the same architecture as the model "
            f"(Ren et al. 2019); it has {'; '.join(problems)}. Train it with "
            "`genood train-background --run RUN`"
        )


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


class LikelihoodRatio(Detector):
    """Score = ``bpd(x) - bpd_0(x)``: minus the log-likelihood ratio per dimension, in bits."""

    name = "ratio"
    summary = (
        "bits/dim minus the background model's (Ren et al. 2019); the background is trained "
        "on mutated inputs by `genood train-background`"
    )
    unit = "bits/dim"
    needs = ("model", "background")

    def __init__(
        self,
        model: LikelihoodModel,
        background: LikelihoodModel,
        *,
        store: Statistics | None = None,
    ) -> None:
        super().__init__(store=store)
        check_same_architecture(model, background)
        self.model = model
        self.background = background

    def requirements(self) -> list[Requirement]:
        return [model_pass(self.model), model_pass(self.background, "background")]

    def _score(self, stats: Stats) -> np.ndarray:
        bits = self.stat(stats, "model/bits_per_dim")
        return bits - self.stat(stats, "background/bits_per_dim")
