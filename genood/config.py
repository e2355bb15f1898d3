"""Typed run configuration: dataclasses loaded from TOML and overridden from the CLI.

A run config has three tables, ``[model]``, ``[data]`` and ``[train]``::

    [model]
    name = "glow"
    [model.hparams]
    levels = 3
    steps = 8

    [data]
    train = "fashion-mnist:train"

    [train]
    steps = 2000

Overrides use dotted keys with TOML values: ``--set train.steps=100 model.hparams.hidden=64``.
Every run writes its resolved config back as ``config.toml`` next to its checkpoints.

Errors: a file that is missing, a folder, unreadable or not valid TOML, an unknown key, a value
of the wrong type or out of range (:func:`validate`: counts, limits, budgets and the gradient
clip are non-negative, the batch size positive) each raise one ``ValueError``/``TypeError``
whose message names the file (when there is one) and the key. ``dumps_toml`` writes any string
so that ``tomllib`` reads it back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Ren et al.'s background model (``genood train-background``): the middle of the authors' grid
# (mutation rate 0.1, 0.2, 0.3; L2 weight 0, 10, 100), chosen without OOD data. Here, and not in
# genood.train.background, so that the CLI's help reads them without importing torch.
BACKGROUND_MUTATION_RATE = 0.2
BACKGROUND_L2 = 10.0


@dataclass
class ModelConfig:
    """Which likelihood model to build, with keyword hyper-parameters for ``models.build``."""

    name: str = "glow"
    hparams: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where training data comes from and the preprocessing recorded for scoring.

    Attributes:
        train: data set spec of the training images (``name:split``, ``npz:PATH``...).
        val: spec of the held-out images for periodic evaluation (empty string: none).
        val_limit: evaluate on at most this many held-out images.
        limit: train on at most this many images (0: all).
        pad_to: zero-pad square images to this size (openai/glow pads 28 -> 32); 0: no padding.
        channels: convert to this many channels (1 or 3); 0: keep.
        resize: resize square images to this size (Pillow, bilinear); 0: keep.
        binarize: ``"dynamic"``: the model sees ``Bernoulli(y / 255)`` binary images, drawn
            afresh at every training use and fixed per image when scoring
            (:mod:`genood.data.binarize`); needs a model with a Bernoulli decoder
            (``hvae`` with ``likelihood = "bernoulli"``). ``""``: 8-bit images.
        data_dir: explicit data folder (otherwise ``GENOOD_DATA``, then the cache).
        mutation_rate: replace each training sub-pixel with a uniform random value with this
            probability (Ren et al. 2019's background model); 0: no mutation.
        track: extra data set specs (e.g. OOD sets) whose bits/dim is logged at every evaluation,
            for the paper's "during optimisation" plot.
        track_limit: evaluate each tracked set on at most this many images.
    """

    train: str = "fashion-mnist:train"
    val: str = "fashion-mnist:test"
    val_limit: int = 2000
    limit: int = 0
    pad_to: int = 0
    channels: int = 0
    resize: int = 0
    binarize: str = ""
    data_dir: str = ""
    mutation_rate: float = 0.0
    track: list[str] = field(default_factory=list)
    track_limit: int = 1000


@dataclass
class TrainConfig:
    """Optimisation, precision, checkpointing and logging.

    Attributes:
        steps: optimiser steps in all.
        time_budget_s: stop early (cleanly, with a checkpoint) after this many seconds; 0: none.
        batch_size: global batch size (split across ranks under DDP).
        optimizer: ``adamax`` (Glow's choice) or ``adam``.
        lr: peak learning rate, reached after ``warmup_steps`` of linear warm-up.
        weight_decay: the optimiser's ``weight_decay`` on every parameter. Adam and Adamax add
            it to the gradient (``g + wd * w``): coupled weight decay, an L2 penalty
            ``wd / 2 * |w|^2`` on the bits/dim loss, not AdamW's decoupled decay.
        l2: Ren et al.'s L2 penalty ``l2 * sum(w^2)`` over the kernels of the convolutions and
            linear layers, in nats per image (the units of the authors' ``reg_weight``, a
            Keras ``l2`` kernel regulariser); applied as coupled weight decay ``2 * l2 /
            (D ln 2)`` on those kernels, D the dimensions of the bits/dim loss (see
            :func:`genood.train.optim.l2_decay`). 0: none.
        jacobian_penalty: lambda of the Jacobian penalty on flows: the loss becomes
            ``bpd + lambda * ||df/dx||_F^2 / D``, the squared norm estimated by Hutchinson's
            method (:mod:`genood.train.jacobian`); 0: off, and training is bitwise unchanged.
        jacobian_samples: Hutchinson probes (vector-Jacobian products) per step for the
            penalty; used only when ``jacobian_penalty > 0``.
        grad_clip: clip the global gradient norm to this value; 0: no clipping.
        max_nonfinite: stop with an error after this many non-finite steps in a row.
        precision: ``fp32``, ``bf16`` (autocast: CUDA, CPUs with AMX or AVX512-BF16), ``fp16``
            (CUDA, grad scaler) or ``auto`` (bf16 where a timed check on this machine finds it
            at least 1.2x faster than fp32, else fp32; see :mod:`genood.train.speedcheck`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        channels_last: use the channels-last memory format (faster convolutions with bf16).
        compile: wrap the model in ``torch.compile``.
        threads: ``torch.set_num_threads``; 0: PyTorch's default (use 1 on a shared machine:
            two threads fighting other processes for two cores run several times slower).
        log_every: steps between progress records in ``metrics.jsonl``.
        eval_every: steps between held-out evaluations; 0: at the end only.
        sample_every: steps between sample grids; 0: at the end only; negative: never.
        checkpoint_every: steps between checkpoints; 0: at the end only.
        init_from: a run folder (its ``checkpoints/last.pt``) or a checkpoint file whose model
            weights start this run instead of a fresh initialisation: fine-tuning, as
            Schirrmeister et al. (2020) fine-tune the in-distribution model from a general-domain
            one. Same model and image shape required; the optimiser, schedule and step count
            start fresh. Empty: none.

    ``time_budget_s`` counts training time across resumes; a run that reaches it is finished
    and can be extended by raising it (or ``steps``) and running again.
    """

    steps: int = 2000
    time_budget_s: float = 0.0
    batch_size: int = 64
    optimizer: str = "adamax"
    lr: float = 1e-3
    weight_decay: float = 0.0
    l2: float = 0.0
    jacobian_penalty: float = 0.0
    jacobian_samples: int = 1
    warmup_steps: int = 200
    grad_clip: float = 50.0
    max_nonfinite: int = 20
    precision: str = "fp32"
    device: str = "auto"
    channels_last: bool = False
    compile: bool = False
    threads: int = 0
    seed: int = 0
    log_every: int = 20
    eval_every: int = 500
    sample_every: int = 0
    checkpoint_every: int = 200
    init_from: str = ""


@dataclass
class RunConfig:
    """The whole resolved configuration of a training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------- loading
def _from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``values``, refusing unknown keys with a clear error."""
    if not isinstance(values, dict):
        raise TypeError(f"[{where}] must be a table of keys, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in [{where}]; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _from_dict(type(default), value, f"{where}.{name}" if where else name)
        else:
            kwargs[name] = _coerce(value, default, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Check ``value`` against the default's type (ints are accepted where floats are)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is not None and not isinstance(value, type(default)):
        raise TypeError(f"{key} must be {type(default).__name__}, got {value!r}")
    return value


def from_dict(values: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from nested dictionaries (as TOML parses them), validated."""
    config = _from_dict(RunConfig, values, "")
    validate(config)
    return config


# Keys that must be >= 0 (limits and "every" counts use 0 for "all" / "at the end only").
NON_NEGATIVE = {
    "data": ("val_limit", "limit", "pad_to", "channels", "resize", "track_limit"),
    "train": (
        "steps",
        "time_budget_s",
        "lr",
        "weight_decay",
        "l2",
        "jacobian_penalty",
        "warmup_steps",
        "grad_clip",
        "max_nonfinite",
        "threads",
        "eval_every",
        "checkpoint_every",
    ),
}


def validate(config: RunConfig) -> None:
    """Refuse values out of range, naming the key (see :data:`NON_NEGATIVE`).

    Raises:
        ValueError: a negative or NaN count, limit, budget, rate or clip; a batch size below
            1; a mutation rate outside [0, 1]; an unknown binarisation.
    """
    for table, keys in NON_NEGATIVE.items():
        section = getattr(config, table)
        for key in keys:
            value = getattr(section, key)
            if not value >= 0:  # also catches NaN
                raise ValueError(f"{table}.{key} must be >= 0, got {value!r}")
    if config.train.batch_size < 1:
        raise ValueError(f"train.batch_size must be at least 1, got {config.train.batch_size}")
    if config.train.jacobian_samples < 1:
        raise ValueError(
            f"train.jacobian_samples must be at least 1 (probes per step), got "
            f"{config.train.jacobian_samples}"
        )
    if config.train.log_every < 1:
        raise ValueError(f"train.log_every must be at least 1, got {config.train.log_every}")
    rate = config.data.mutation_rate
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"data.mutation_rate must be in [0, 1], got {rate!r}")
    if config.data.binarize not in ("", "dynamic"):
        raise ValueError(
            f'data.binarize must be "dynamic" (binary images) or "" (8-bit images), got '
            f"{config.data.binarize!r}"
        )


def load(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML run config, then apply ``key.path=value`` overrides.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is a folder, unreadable as UTF-8 TOML, or its values are invalid (the
            message starts with the file's path; with ``--set ...`` when an override is).
        TypeError: a value of the wrong type (named the same way).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.is_dir():
        raise ValueError(
            f"config file {path} is a folder; give a TOML file, e.g. configs/fashion-mnist-cpu.toml"
        )
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not a valid TOML config ({error}); fix or replace it"
        ) from error
    try:
        from_dict(values)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{path}: {error}") from error
    try:
        return from_dict(apply_overrides(values, overrides or []))
    except (ValueError, TypeError) as error:
        raise type(error)(f"--set {' '.join(overrides or [])}: {error}") from error


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in nested dicts: ``train.steps=100``; values parse as TOML, else strings."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = values
        parts = [part.strip() for part in key.strip().split(".")]
        if not all(parts):
            raise ValueError(f"override {item!r} has an empty key; write e.g. train.lr=5e-4")
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                table = ".".join(parts[: depth + 1])
                raise ValueError(f"override {item!r}: {table} is a value, not a table of keys")
        node[parts[-1]] = value
    return values


def to_dict(config: Any) -> dict[str, Any]:
    """Dataclass -> nested dict."""
    return dataclasses.asdict(config)


# ----------------------------------------------------------------------------- writing
def dumps_toml(values: dict[str, Any]) -> str:
    """Serialise nested dicts of scalars, lists and tables to TOML (enough for our configs)."""
    lines: list[str] = []
    _write_table(values, [], lines)
    return "\n".join(lines).strip() + "\n"


def _write_table(values: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append(f"\n[{'.'.join(_toml_key(p) for p in prefix)}]")
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        _write_table(value, [*prefix, key], lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        raise TypeError("TOML has no null; use an empty string or 0")
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def save(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as TOML."""
    from genood.io import write_text_atomic

    write_text_atomic(path, dumps_toml(to_dict(config)))
