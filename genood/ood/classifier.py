"""A small CNN ``p(y | x)`` and its trainer: the predictive model a density gate protects.

Three 3x3 convolution blocks (``width``, ``2 width``, ``2 width`` channels, batch norm, ReLU,
2x2 max-pools after the first two), an adaptive average pool to 3x3 and a two-layer head: about
0.13 M parameters at ``width = 32``. On FashionMNIST, 2 epochs over 10,000 images give 84% test
accuracy in a minute or two on a CPU. Inputs are uint8 images, fed as ``y / 255 - 1/2``.

Saved as ``classifier.json`` (shape, classes, width, training record) and ``classifier.pt``
(the state dict, loaded with ``weights_only=True``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from genood.io import atomic_path, write_text_atomic
from genood.ood.base import validate_images

CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "classifier.pt"


def _block(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 convolution, batch normalisation (for fast, stable training), ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class SmallCNN(nn.Module):
    """Three conv blocks and a two-layer head; logits ``(B, num_classes)``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(in_channels, width),
            nn.MaxPool2d(2),
            *_block(width, 2 * width),
            nn.MaxPool2d(2),
            *_block(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(3),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 9, 128),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head[-1](self.embed(x))

    def embed(self, x: Tensor) -> Tensor:
        """The penultimate activations ``(B, 128)``: the head's hidden layer after its ReLU
        (dropout is off in evaluation mode); the logits are a linear map of them."""
        return self.head[:-1](self.features(x))


class Classifier:
    """Train and apply a :class:`SmallCNN` on uint8 ``(N, C, H, W)`` images.

    Args:
        image_shape: ``(C, H, W)`` of the images (at least 4x4).
        num_classes: labels are ``0 .. num_classes - 1``.
        width: channels of the first convolution.
        device: ``cpu`` or ``cuda``.
        seed: the weights' initialisation (the global RNG is left alone).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int,
        width: int = 32,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if len(image_shape) != 3 or min(image_shape[1:]) < 4:
            raise ValueError(f"image_shape must be (C, H, W) with H, W >= 4, got {image_shape}")
        c, h, w = (int(s) for s in image_shape)
        self.image_shape: tuple[int, int, int] = (c, h, w)
        self.num_classes = int(num_classes)
        self.width = int(width)
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = SmallCNN(self.image_shape[0], self.num_classes, self.width)
        self.network = network.to(self.device)
        self.history: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------- training
    def fit(
        self,
        images: Any,
        labels: Any,
        epochs: int = 3,
        batch_size: int = 128,
        lr: float = 1e-3,
        seed: int = 0,
        progress: bool = False,
    ) -> Classifier:
        """Minimise the cross-entropy with Adam over ``epochs`` shuffled passes."""
        images = validate_images(images, self.image_shape, "Classifier.fit")
        targets = self._check_labels(labels, len(images))
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
        self.network.train()
        start = time.perf_counter()
        steps = (len(images) + batch_size - 1) // batch_size
        # dropout draws from the global RNG: seed it for this fit only
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            losses = [
                self._epoch(images, targets, batch_size, steps, optimizer, generator, label)
                for label in (
                    f"epoch {e + 1}/{epochs}" if progress else None for e in range(epochs)
                )
            ]
        self._recalibrate_batch_norm(images, batch_size)
        self.history = {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "train_images": len(images),
            "train_loss": losses,
            "seconds": round(time.perf_counter() - start, 2),
        }
        self.network.eval()
        return self

    def _epoch(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        steps: int,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        label: str | None,
    ) -> float:
        """One shuffled pass; returns the mean cross-entropy."""
        order = torch.randperm(len(images), generator=generator).numpy()
        total = 0.0
        for step in tqdm(range(steps), desc=label, disable=label is None, leave=False):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = self._inputs(images[index])
            y = torch.from_numpy(targets[index]).to(self.device)
            loss = nn.functional.cross_entropy(self.network(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        return total / len(images)

    @torch.no_grad()
    def _recalibrate_batch_norm(self, images: np.ndarray, batch_size: int) -> None:
        """Replace the running batch-norm statistics by exact averages under the final weights.

        The running averages trail the weights while they train, which on short runs leaves
        evaluation-mode outputs far off; one pass over (up to 4,096 of) the training images
        with cumulative averaging fixes that.
        """
        norms = [m for m in self.network.modules() if isinstance(m, nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative moving average
        self.network.train()
        for start in range(0, min(len(images), 4096), batch_size):
            self.network(self._inputs(images[start : start + batch_size]))
        for norm in norms:
            norm.momentum = 0.1
        self.network.eval()

    # ------------------------------------------------------------- inference
    @torch.inference_mode()
    def logits(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """The network's logits ``f(x)``, ``(N, num_classes)`` float64 (``softmax`` gives
        :meth:`predict_proba`)."""
        images = validate_images(images, self.image_shape, "Classifier.logits")
        self.network.eval()
        parts = [
            self.network(self._inputs(images[i : i + batch_size])).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(parts).double().numpy()

    @torch.inference_mode()
    def features(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """The penultimate activations ``(N, 128)`` float64 (:meth:`SmallCNN.embed`), which
        feature-space scores such as ``mahalanobis`` read."""
        images = validate_images(images, self.image_shape, "Classifier.features")
        self.network.eval()
        parts = [
            self.network.embed(self._inputs(images[i : i + batch_size])).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(parts).double().numpy()

    @torch.inference_mode()
    def predict_proba(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """Class probabilities ``(N, num_classes)``."""
        images = validate_images(images, self.image_shape, "Classifier.predict")
        self.network.eval()
        parts = [
            torch.softmax(self.network(self._inputs(images[i : i + batch_size])), dim=1).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(parts).double().numpy()

    def predict(self, images: Any) -> np.ndarray:
        """Most probable label of each image, ``(N,)`` int64."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)

    def accuracy(self, images: Any, labels: Any) -> float:
        """Share of ``images`` whose predicted label equals ``labels``."""
        targets = self._check_labels(labels, len(images))
        return float(np.mean(self.predict(images) == targets))

    # ------------------------------------------------------------- identity
    def state_dict(self) -> dict[str, Tensor]:
        """The network's weights (what :func:`~genood.ood.validation.fingerprint` hashes)."""
        return dict(self.network.state_dict())

    def describe(self) -> dict[str, object]:
        """What a saved detector records about the classifier it reads."""
        return {
            "model": type(self).__name__,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "width": self.width,
            "parameters": sum(p.numel() for p in self.network.parameters()),
        }

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write ``classifier.json`` and ``classifier.pt`` into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        document = {
            "genood_classifier": 1,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "width": self.width,
            "input": "y / 255 - 1/2 for uint8 y",
            "history": self.history,
            **extra,
        }
        write_text_atomic(path / CONFIG_FILE, json.dumps(document, indent=2) + "\n")
        with atomic_path(path / WEIGHTS_FILE) as temporary:
            torch.save(self.network.state_dict(), temporary)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Classifier:
        """Rebuild a classifier saved by :meth:`save` (weights loaded with ``weights_only``)."""
        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(
                f"{path / CONFIG_FILE} does not exist; train one with `genood train-classifier`"
            )
        document = json.loads((path / CONFIG_FILE).read_text())
        classifier = cls(
            tuple(document["image_shape"]), document["num_classes"], document["width"], device
        )
        state = torch.load(path / WEIGHTS_FILE, map_location=classifier.device, weights_only=True)
        classifier.network.load_state_dict(state)
        classifier.network.eval()
        classifier.history = document.get("history", {})
        classifier.metadata = document
        return classifier

    # ------------------------------------------------------------- helpers
    def _inputs(self, images: np.ndarray) -> Tensor:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).float()
        return x / 255.0 - 0.5

    def _check_labels(self, labels: Any, count: int) -> np.ndarray:
        targets = np.asarray(labels)
        if targets.shape != (count,):
            raise ValueError(f"labels must have shape ({count},), got {targets.shape}")
        if not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(f"labels must be integers, got {targets.dtype}")
        if count and (targets.min() < 0 or targets.max() >= self.num_classes):
            raise ValueError(
                f"labels must be in 0..{self.num_classes - 1}, got "
                f"[{targets.min()}, {targets.max()}]"
            )
        return targets.astype(np.int64)
