"""Dauncey et al. (2024): the layer-wise norms of the likelihood's gradient, a typicality test.

Dauncey, Holmes, Williams & Falck, "Approximations to the Fisher information metric of deep
generative models for out-of-distribution detection" (TMLR 2024; first as "On gradients of deep
generative models for representation-invariant anomaly detection", ICLR 2023 workshop). A
likelihood ranks MNIST above FashionMNIST under a FashionMNIST model, but the *gradient* of the
log-likelihood with respect to the parameters tells how much an input would move the model: an
input whose structure the model has not learned pulls hard on some layers. The gradient is also
invariant to the volume of the input space, which drives the likelihood's failure.

For each image ``x`` and each parameter tensor ``theta_l`` of the model (one per layer's weight,
bias, scale...) the statistic is

    g_l(x) = log || d(-log p(x)) / d theta_l ||_2^2            (nats, one image at a time),

the logarithm of a layer-wise diagonal approximation of the Fisher information metric up to a
constant per layer. ``fit`` fits an independent Gaussian to each ``g_l`` on held-out
in-distribution images (mean and standard deviation; a layer whose gradient is constant on
them, e.g. zero, is dropped), and the score is the negative log-density of the vector,

    s(x) = - sum_l log N(g_l(x); mu_l, sigma_l),

higher = more anomalous: too large *and* too small a pull on any layer are both atypical. This
is the ``DiagonalGaussianL2Norm`` of the authors' code (``anomaly_methods/gradients/L2_norms``),
which they report as their main method; they also offer a one-class SVM and a Fisher's-method
variant, not built here.

Per-image gradients are computed with ``torch.func`` (``vmap`` over ``grad`` of a functional call,
the model in eval mode, bin-midpoint dequantisation, float32), in chunks of images; models whose
layers ``vmap`` cannot batch fall back to one backward pass per image, with the same result.
The statistic is ``grad/<parameter name>`` (squared norms, ``log`` taken by the detector) and is
cached like every model pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from genood.models.base import LikelihoodModel
from genood.ood.base import Detector
from genood.ood.statistics import Requirement, Statistics, Stats

PREFIX = "grad"
CHUNK = 32  # images per vmap call: per-image gradients take CHUNK x (parameter count) floats
TINY = 1e-300  # log(0) guard: a zero gradient becomes a very small, finite log-norm


@dataclass(frozen=True, eq=False)
class ParameterGradients(Requirement):
    """``||d(-log p(x))/d theta_l||^2`` for every parameter tensor ``l``, per image."""

    @property
    def key(self) -> str:
        return "sqnorm"

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        model = self.model
        assert model is not None
        model.eval()
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        per_image = _vmap_norms(model, names)
        out: dict[str, list[np.ndarray]] = {n: [] for n in names}
        starts = range(0, len(images), CHUNK)
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # a sampling model (a VAE) is seeded
            torch.manual_seed(0)
            for start in tqdm(starts, desc="gradients", disable=not settings.progress):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + CHUNK]))
                x = model.preprocess(batch, dequantize=False)
                try:
                    norms = per_image(x)
                except (RuntimeError, NotImplementedError):  # an op vmap cannot batch
                    per_image = _loop_norms(model, names)
                    norms = per_image(x)
                for name in names:
                    out[name].append(norms[name].double().cpu().numpy())
        return {name: np.concatenate(parts) for name, parts in out.items()}


def _vmap_norms(model: LikelihoodModel, names: list[str]) -> Callable[[Tensor], dict[str, Tensor]]:
    """Per-image squared gradient norms of ``-log p(x)`` by ``vmap(grad(...))``."""
    from torch.func import functional_call, grad, vmap

    wrapper = _LogProb(model)
    params = {f"m.{n}": p.detach() for n, p in model.named_parameters() if n in names}
    frozen = {f"m.{n}": p.detach() for n, p in model.named_parameters() if n not in names}
    buffers = {f"m.{n}": b.detach() for n, b in model.named_buffers()}

    def nll(p: dict[str, Tensor], x: Tensor) -> Tensor:
        state = {**p, **frozen, **buffers}
        log_prob = functional_call(wrapper, state, (x.unsqueeze(0),), {}, strict=False)
        return -log_prob.sum()

    per_image_grad = vmap(grad(nll), in_dims=(None, 0))

    def norms(x: Tensor) -> dict[str, Tensor]:
        grads = per_image_grad(params, x)
        return {n[2:]: g.flatten(1).square().sum(1) for n, g in grads.items()}

    return norms


def _loop_norms(model: LikelihoodModel, names: list[str]) -> Callable[[Tensor], dict[str, Tensor]]:
    """The same with one backward pass per image (models ``vmap`` cannot batch)."""
    params = [p for n, p in model.named_parameters() if n in names]

    def norms(x: Tensor) -> dict[str, Tensor]:
        rows: list[list[Tensor]] = []
        for xi in x:
            with torch.enable_grad():
                loss = -model.log_prob(xi.unsqueeze(0)).sum()
                grads = torch.autograd.grad(loss, params, allow_unused=True)
            rows.append(
                [
                    g.square().sum() if g is not None else torch.zeros((), device=x.device)
                    for g in grads
                ]
            )
        return {n: torch.stack([row[i] for row in rows]) for i, n in enumerate(names)}

    return norms


class _LogProb(torch.nn.Module):
    """``forward(x) = model.log_prob(x)``, so that ``functional_call`` can swap the weights."""

    def __init__(self, model: LikelihoodModel) -> None:
        super().__init__()
        self.m = model

    def forward(self, x: Tensor) -> Tensor:
        return self.m.log_prob(x)


class GradientNorms(Detector):
    """Score = ``-sum_l log N(log ||grad_l||^2; mu_l, sigma_l)`` (see the module doc).

    Attributes:
        layers_: the parameter names kept (non-constant on the fitting images).
        mean_, std_: per kept layer, of ``log ||grad_l||^2`` on the fitting images.
    """

    name = "gradnorm"
    summary = (
        "layer-wise log norms of the likelihood's parameter gradient, one Gaussian each "
        "(Dauncey et al. 2024); per-image backward passes"
    )
    unit = "nats"

    def __init__(self, model: LikelihoodModel, *, store: Statistics | None = None) -> None:
        super().__init__(store=store)
        if not isinstance(model, torch.nn.Module) or not any(
            p.requires_grad for p in model.parameters()
        ):
            raise TypeError(
                f"gradnorm needs a likelihood model with trainable parameters, got "
                f"{type(model).__name__}"
            )
        self.model = model
        self.layers_: list[str] = []
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def requirements(self) -> list[Requirement]:
        return [ParameterGradients(PREFIX, self.model)]

    def _logs(self, stats: Stats, layers: list[str]) -> np.ndarray:
        columns = [self.stat(stats, f"{PREFIX}/{name}") for name in layers]
        return np.log(np.maximum(np.stack(columns, axis=1), TINY))

    def _fit(self, stats: Stats) -> None:
        names = sorted(k.split("/", 1)[1] for k in stats if k.startswith(f"{PREFIX}/"))
        logs = self._logs(stats, names)
        std = logs.std(axis=0, ddof=1) if len(logs) > 1 else np.zeros(len(names))
        keep = std > 1e-9 * np.maximum(1.0, np.abs(logs.mean(axis=0)))  # constant: no information
        if not keep.any():
            raise ValueError(
                "every layer's gradient norm is constant on the fitting images: fit gradnorm "
                "on at least 2 different in-distribution images"
            )
        self.layers_ = [n for n, k in zip(names, keep, strict=True) if k]
        self.mean_ = logs[:, keep].mean(axis=0)
        self.std_ = std[keep]

    def _score(self, stats: Stats) -> np.ndarray:
        assert self.mean_ is not None and self.std_ is not None
        z = (self._logs(stats, self.layers_) - self.mean_) / self.std_
        return 0.5 * (z**2).sum(axis=1) + np.log(self.std_ * np.sqrt(2 * np.pi)).sum()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self.mean_ is not None and self.std_ is not None
        return {"layers": self.layers_}, {"mean": self.mean_, "std": self.std_}

    def _set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.layers_ = list(values["layers"])
        self.mean_ = arrays["mean"]
        self.std_ = arrays["std"]
