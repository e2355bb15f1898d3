"""Likelihood models: ``build(name, image_shape, **hparams)`` and the shared contract."""

from genood.models.base import LikelihoodModel, bits_per_dim_from_log_prob
from genood.models.registry import available, build, register

__all__ = ["LikelihoodModel", "available", "bits_per_dim_from_log_prob", "build", "register"]
