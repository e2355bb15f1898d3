"""The statistics layer: what detectors read from models, computed once per (model, image set).

Detectors never run a model themselves. Each declares the :class:`Requirement` s it needs
(:meth:`~genood.ood.base.Detector.requirements`); a :class:`Statistics` store computes them
and hands back one flat dictionary of per-image float64 arrays, ``"<prefix>/<name>" -> (N,)``:

* ``model/bits_per_dim``, ``model/log_prob``, ``model/log_pz``, ``model/log_pz.1`` ...: one
  deterministic pass of the model (:class:`ModelPass`; bin-midpoint dequantisation, every term
  and part of :meth:`~genood.models.base.LikelihoodModel.log_prob_parts`, nats);
* ``background/bits_per_dim``, ``ensemble.1/bits_per_dim`` ...: the same for other models,
  under the prefix the detector gives them;
* ``codec/png``: ``L(x)``, the lossless codec's length of each image in bits
  (:class:`CodecLength`; needs no model);
* ``classifier/logit.0`` ... ``classifier/logit.<K-1>``: a classifier's logits
  (:class:`~genood.ood.softmax.ClassifierLogits`, for the ``msp`` and ``energy`` baselines). A
  classifier reads the images *as loaded*, not the run's preprocessing of them
  (:attr:`Requirement.on_loaded_images`): :func:`gather_views` hands such requirements the
  loaded images and every other one the models' input;
* whatever else a detector's own requirement computes (``model/llr.k1.s1.seed0``).

Detectors fit and score on such dictionaries, so they can be tested on synthetic arrays.

Caching: every result is kept in memory and, when the store has a folder, written as
``ROOT/<model key>/<images key>/<requirement key>.npz``. The model key hashes the weights, the
model's ``describe()`` (its scoring settings, e.g. a VAE's number of importance samples) and the
precision; the images key hashes the uint8 bytes and shape. A second ``genood detect`` on the
same run and sets reads the files and makes no model pass. Sets given a name are also listed in
``ROOT/index.json`` so that their statistics can be read back without the images
(:func:`read_named`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genood.io import save_npz_atomic, write_text_atomic
from genood.models.base import LikelihoodModel

Stats = dict[str, np.ndarray]
INDEX_FILE = "index.json"
PASS_KEY = "pass"  # the key of a model's pass (ModelPass)


@dataclass(frozen=True, eq=False)
class Requirement:
    """One statistic a detector needs: computed by :meth:`compute` on uint8 images.

    Attributes:
        prefix: the names' prefix in the flat dictionary (``model``, ``background``,
            ``codec``...).
        model: the model it is computed with, ``None`` for a statistic of the images alone.
    """

    prefix: str
    model: LikelihoodModel | None = None

    @property
    def key(self) -> str:
        """Identifies the computation among those of one model (a file stem)."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def cacheable(self) -> bool:
        """Whether the result is a deterministic function of the model and the images."""
        return True

    @property
    def on_loaded_images(self) -> bool:
        """Whether it reads the images as loaded, before a run's preprocessing (a classifier's
        outputs: the classifier was trained on them), rather than the model's input."""
        return False

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        """The arrays, by name *without* the prefix, each ``(N,)`` float64."""
        raise NotImplementedError  # pragma: no cover - abstract


@dataclass(frozen=True, eq=False)
class ModelPass(Requirement):
    """bits/dim, ``log p(x)`` and every term and part of one deterministic model pass."""

    @property
    def key(self) -> str:
        return PASS_KEY

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        from genood.models.scoring import score_images

        assert self.model is not None
        scores = score_images(
            self.model,
            images,
            batch_size=settings.batch_size,
            precision=settings.precision,
            progress=settings.progress,
            desc=f"scoring ({self.prefix})",
        )
        return {name: np.asarray(value, dtype=np.float64) for name, value in scores.items()}


@dataclass(frozen=True, eq=False)
class CodecLength(Requirement):
    """``L(x)``: the length in bits of each image compressed losslessly with ``codec``."""

    codec: str = "png"

    @property
    def key(self) -> str:
        return f"codec-{self.codec}"

    def compute(self, images: np.ndarray, settings: Statistics) -> Stats:
        from genood.ood.complexity import compressed_bits

        bits = compressed_bits(images, self.codec, settings.workers, settings.progress)
        return {self.codec: bits}


def model_pass(model: LikelihoodModel, prefix: str = "model") -> ModelPass:
    """The requirement of ``model``'s terms under ``prefix``."""
    return ModelPass(prefix, model)


def codec_length(codec: str) -> CodecLength:
    """The requirement ``codec/<codec>`` (bits per image)."""
    return CodecLength("codec", None, codec)


@dataclass
class Statistics:
    """Computes requirements once per (model, image set), in memory and optionally on disk.

    Args:
        root: folder for the npz files (``RUN/statistics``); ``None`` keeps them in memory only.
        batch_size: images per forward pass.
        precision: ``fp32`` or ``bf16`` (part of the cache key).
        workers: threads for the codecs.
        progress: show progress bars.

    Attributes:
        passes: how many requirements were computed (not read back) since creation: a second
            ``detect`` on the same sets shows ``0``.
    """

    root: Path | None = None
    batch_size: int = 256
    precision: str = "fp32"
    workers: int = 1
    progress: bool = False
    passes: int = 0
    _memory: dict[tuple[str, str, str], Stats] = field(default_factory=dict, repr=False)
    _model_keys: dict[int, tuple[LikelihoodModel, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.root is not None:
            self.root = Path(self.root)

    # ------------------------------------------------------------- the one entry point
    def gather(
        self, requirements: Iterable[Requirement], images: np.ndarray, name: str | None = None
    ) -> Stats:
        """Every requirement's arrays on ``images``, as one flat ``"<prefix>/<name>"`` dict.

        Requirements with the same prefix and key are computed once. ``name`` lists the set in
        the folder's index under ``<prefix>/<name>`` (see :func:`read_named`).
        """
        images_key = images_digest(images)
        out: Stats = {}
        done: set[tuple[str, str]] = set()
        indexed: list[Requirement] = []
        for requirement in requirements:
            if (requirement.prefix, requirement.key) in done:
                continue
            done.add((requirement.prefix, requirement.key))
            arrays = self._get(requirement, images, images_key)
            out.update({f"{requirement.prefix}/{k}": v for k, v in arrays.items()})
            if requirement.cacheable:
                indexed.append(requirement)
        if name is not None and self.root is not None and indexed:
            self._index(indexed, images_key, name, len(images))
        return out

    def model_pass(
        self,
        model: LikelihoodModel,
        images: np.ndarray,
        name: str | None = None,
        prefix: str = "model",
    ) -> Stats:
        """One model's pass over ``images`` (bits/dim, log p, terms, parts), names unprefixed.

        ``name`` lists the set in the index under ``<prefix>/<name>``.
        """
        stats = self.gather([ModelPass(prefix, model)], images, name=name)
        return {key.split("/", 1)[1]: value for key, value in stats.items()}

    def _get(self, requirement: Requirement, images: np.ndarray, images_key: str) -> Stats:
        if not requirement.cacheable:
            self.passes += 1
            return requirement.compute(images, self)
        model_key = self.model_key(requirement.model)
        memo = (model_key, images_key, requirement.key)
        if memo in self._memory:
            return self._memory[memo]
        path = self._path(model_key, images_key, requirement.key)
        arrays = _read(path) if path is not None else None
        if arrays is None:
            arrays = requirement.compute(images, self)
            self.passes += 1
            if path is not None:
                self._write(path, arrays, requirement.model)
        self._memory[memo] = arrays
        return arrays

    # ------------------------------------------------------------- keys and files
    def model_key(self, model: LikelihoodModel | None) -> str:
        """``input`` for image statistics; else a hash of weights, ``describe()`` and precision."""
        if model is None:
            return "input"
        known = self._model_keys.get(id(model))
        if known is not None and known[0] is model:
            return known[1]
        from genood.ood.base import fingerprint

        digest = hashlib.sha256(fingerprint(model).encode())
        digest.update(json.dumps(model.describe(), sort_keys=True, default=str).encode())
        digest.update(self.precision.encode())
        key = digest.hexdigest()[:16]
        self._model_keys[id(model)] = (model, key)
        return key

    def _path(self, model_key: str, images_key: str, key: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / model_key / images_key / f"{key}.npz"

    def _write(self, path: Path, arrays: Stats, model: LikelihoodModel | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        about = path.parents[1] / "model.json"
        if model is not None and not about.exists():
            write_text_atomic(about, json.dumps(model.describe(), indent=2, default=str) + "\n")
        save_npz_atomic(path, **arrays)

    def _index(
        self, requirements: list[Requirement], images_key: str, name: str, count: int
    ) -> None:
        """List the set ``name`` under each requirement's label, in one write of the index."""
        assert self.root is not None
        index_path = self.root / INDEX_FILE
        index = json.loads(index_path.read_text()) if index_path.is_file() else {}
        changed = False
        for requirement in requirements:
            entry = {
                "model": self.model_key(requirement.model),
                "images": images_key,
                "requirement": requirement.key,
                "n": count,
            }
            label = index_label(requirement.prefix, requirement.key, name)
            if index.get(label) != entry:
                index[label] = entry
                changed = True
        if changed:
            self.root.mkdir(parents=True, exist_ok=True)
            write_text_atomic(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")


def gather_views(
    store: Statistics,
    requirements: Iterable[Requirement],
    images: np.ndarray,
    loaded: np.ndarray | None = None,
    name: str | None = None,
) -> Stats:
    """Each requirement on its own view of one image set, as one flat dictionary.

    ``images`` are the models' input (a run's preprocessing applied), ``loaded`` the same
    images as loaded, for the requirements that read those
    (:attr:`Requirement.on_loaded_images`, a classifier's logits); without ``loaded`` every
    requirement reads ``images``. This is the one place that routes the two views: the
    workflow's :func:`~genood.ood.workflow.gather_sets` and a combination over components of
    different image shapes (:class:`~genood.ood.combine.Combined`) both call it.
    """
    needed = list(requirements)
    on_model = [r for r in needed if not r.on_loaded_images]
    on_loaded = [r for r in needed if r.on_loaded_images]
    raw = images if loaded is None else loaded
    if len(raw) != len(images):
        raise ValueError(
            f"{name or 'a set'}: {len(raw)} loaded images for {len(images)} preprocessed ones; "
            "give both views the same images"
        )
    stats = store.gather(on_model, images, name=name) if on_model else {}
    if on_loaded:
        stats.update(store.gather(on_loaded, raw, name=name))
    return stats


def index_label(prefix: str, key: str, name: str) -> str:
    """``main/fashion-mnist:test`` for a model pass, ``codec.codec-png/...`` for the others
    (two requirements of one prefix, e.g. two codecs, must not share a label)."""
    return f"{prefix}/{name}" if key == PASS_KEY else f"{prefix}.{key}/{name}"


def read_named(root: str | Path, prefix: str, name: str) -> Stats | None:
    """The arrays stored for the set ``name`` under ``prefix`` (``None`` when not stored)."""
    root = Path(root)
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        return None
    entry = json.loads(index_path.read_text()).get(index_label(prefix, PASS_KEY, name))
    if entry is None:
        return None
    return _read(root / entry["model"] / entry["images"] / f"{entry['requirement']}.npz")


def images_digest(images: np.ndarray) -> str:
    """SHA-1 of a uint8 array's shape and bytes, 16 hex digits."""
    digest = hashlib.sha1(str(tuple(images.shape)).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()[:16]


def subset(stats: Stats, index: np.ndarray | slice) -> Stats:
    """The same statistics for a subset of the images (an index array or a slice)."""
    return {name: values[index] for name, values in stats.items()}


def concat(parts: Iterable[Stats]) -> Stats:
    """Statistics of several image sets, one after another."""
    parts = list(parts)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def count(stats: Stats) -> int:
    """The number of images the statistics describe."""
    lengths = {len(v) for v in stats.values()}
    if len(lengths) != 1:
        raise ValueError(f"statistics of different lengths {sorted(lengths)}: not one image set")
    return lengths.pop()


def _read(path: Path) -> Stats | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError):  # a torn or foreign file: compute again
        return None
