"""``fit(config, run_dir)``: train a likelihood model into a run folder, resuming when possible.

A run folder with ``checkpoints/last.pt`` is resumed when its recorded config is compatible with
the given one: the model, the training data and its preprocessing, the seed, the batch size and
the optimiser must match (else the error lists the differences); everything else (number of
steps, learning rate, warm-up, precision, device, logging...) may change, and takes effect from
the resumed step. A finished run (``done.json``) whose config asks for no more steps returns its
final metrics at once, which makes pipelines that call ``fit`` idempotent.

Starting over (``resume=False``, or a folder without a checkpoint) deletes the folder's
checkpoint, metrics, samples and scores; when any of them holds results (a checkpoint,
``done.json``, scores, samples, evaluations in ``metrics.jsonl``) that needs ``overwrite=True``,
else the ``ValueError`` lists what would be lost. While ``fit`` runs, the main process holds the
folder's lock (:mod:`genood.train.lock`): a second ``fit`` into the same folder fails at once.

``train.init_from`` (a run folder or checkpoint) starts a fresh run from another run's model
weights, after the usual initialisation (so ActNorm's flags come from the loaded model): the
optimiser, schedule and step count start from zero. Resuming such a run resumes its own
checkpoint; ``init_from`` is then part of the run's identity and may not change.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from genood import config as cfg
from genood.train import checkpoint as ckpt
from genood.train.batches import STREAM_MODEL, derive_seed
from genood.train.distributed import DistContext, default_threads, init_distributed
from genood.train.lock import RunLock
from genood.train.loop import TrainData, Trainer
from genood.train.moved import same_moved_data
from genood.train.precision import Precision, resolve_device, resolve_precision
from genood.train.run import RunFolder, environment
from genood.train.sets import fit_images, load_set, load_tracked, preprocessing_of

# Keys that define what is being trained: a checkpoint cannot continue under other values.
IDENTITY_KEYS = (
    "model.name",
    "model.hparams",
    "data.train",
    "data.limit",
    "data.pad_to",
    "data.channels",
    "data.resize",
    "data.mutation_rate",
    "train.batch_size",
    "train.optimizer",
    "train.l2",
    "train.jacobian_penalty",
    "train.seed",
    "train.init_from",
)


def fit(
    config: cfg.RunConfig,
    run_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
    data_dir: str | Path | None = None,
    distributed: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``config``'s model into ``run_dir``; returns the final metrics.

    Args:
        config: the run config (not modified).
        run_dir: the run folder (created).
        resume: continue from ``run_dir/checkpoints/last.pt`` when present and compatible;
            ``False`` starts over, deleting the folder's checkpoints, metrics, samples and scores.
        progress: show a tqdm bar and evaluation lines.
        data_dir: data folder (overrides ``config.data.data_dir``).
        distributed: require torchrun's environment (DDP is also used whenever torchrun
            launched this process with more than one worker).
        overwrite: allow starting over in a folder that holds results (see the module doc).

    Returns:
        ``step``, ``stopped`` (``steps``, ``time_budget`` or ``signal``), ``finished``,
        ``loss_bpd``, ``eval_bpd``, ``track_bpd``, ``nonfinite_skipped``, ``train_time_s``...

    Raises:
        NonFiniteError: after ``train.max_nonfinite`` non-finite steps in a row.
        ValueError: for an invalid config or a checkpoint of an incompatible config, or when
            starting over would delete results and ``overwrite`` is not set.
        RunLockedError: another process is writing to ``run_dir``.
    """
    config = copy.deepcopy(config)
    context = init_distributed(distributed, config.train.device)
    devices = (
        [torch.cuda.current_device()]
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else []
    )
    lock = RunLock(run_dir) if context.is_main else contextlib.nullcontext()
    try:
        # Training re-seeds the global RNGs every step; the caller gets its own back.
        with lock, torch.random.fork_rng(devices=devices):
            numpy_state = np.random.get_state()
            try:
                return _fit(config, Path(run_dir), resume, progress, data_dir, context, overwrite)
            finally:
                np.random.set_state(numpy_state)
    finally:
        context.close()


def _fit(
    config: cfg.RunConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    data_dir: str | Path | None,
    context: DistContext,
    overwrite: bool = False,
) -> dict[str, Any]:
    t = config.train
    if t.steps < 0:
        raise ValueError(f"train.steps must be >= 0, got {t.steps}")
    run = RunFolder(run_dir, writer=context.is_main)
    device = resolve_device(t.device, context.local_rank)
    if t.precision == "auto":  # rank 0 measures; every rank trains in its choice
        measured = resolve_precision(t.precision, device) if context.is_main else None
        precision = cast(Precision, context.broadcast_object(measured))
    else:
        precision = resolve_precision(t.precision, device)
    threads = _set_threads(t.threads, context, device)
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
    data_dir = data_dir or config.data.data_dir or None
    if data_dir is not None:
        config.data.data_dir = str(data_dir)

    state: dict[str, Any] | None = None
    changed: list[str] = []
    if resume and run.has_checkpoint():
        state = ckpt.load(run.last_checkpoint, map_location=device)
        changed = check_compatible(
            cfg.from_dict(_parse_toml(state["config"])), config, run.last_checkpoint
        )
        done = run.done()
        if done is not None and _finished(config, state):
            return done
    if state is None:
        # --no-resume, or leftovers of a run killed before its first checkpoint
        lost = run.results() if context.is_main else []
        if lost and not overwrite:
            why = (
                "--no-resume starts over"
                if not resume
                else f"it has no checkpoint to resume from ({run.last_checkpoint})"
            )
            raise ValueError(
                f"{run.root} holds results that starting over would delete ({why}): "
                f"{', '.join(lost)}; add --overwrite to delete them, or train into another "
                "folder with --out"
            )
        run.clear()
    elif context.is_main:
        run.done_path.unlink(missing_ok=True)  # more steps to go
    context.barrier()

    data, preprocessing, image_shape = _load_data(config, data_dir, progress, context)
    if state is not None and tuple(state["image_shape"]) != image_shape:
        raise ValueError(
            f"the checkpoint's model takes images of shape {tuple(state['image_shape'])} but "
            f"{config.data.train!r} preprocesses to {image_shape}; use --no-resume"
        )
    from genood.models import build

    # Initial weights depend on the seed only (and are the same on every rank).
    torch.manual_seed(derive_seed(t.seed, STREAM_MODEL))
    model = build(config.model.name, image_shape, **config.model.hparams).to(device)
    require_binarization(model, config.data.binarize)
    trainer = Trainer(config, model, data, run, context, device, precision, progress)
    if state is not None:
        trainer.load_state_dict(state)
        run.truncate_metrics(trainer.step)
        del state
    else:
        trainer.initialize()
        if t.init_from:
            init_weights(model, t.init_from, config.model.name, image_shape, device)
    trainer.prepare()

    run.write_text(run.config_path, cfg.dumps_toml(cfg.to_dict(config)))
    run.write_json(run.preprocessing_path, preprocessing.to_dict())
    env = environment(
        device,
        threads,
        context.world_size,
        precision=precision.name,
        precision_requested=precision.requested,
        precision_note=precision.note,
        model=model.describe(),
    )
    run.write_json(run.environment_path, env)
    run.log(
        "resume" if trainer.step else "start",
        step=trainer.step,
        changed=changed,
        device=str(device),
        precision=precision.name,
        world_size=context.world_size,
        threads=threads,
    )
    return trainer.fit()


def init_weights(
    model: torch.nn.Module,
    source: str | Path,
    name: str,
    image_shape: tuple[int, ...],
    device: torch.device,
) -> Path:
    """Load the model weights of ``source`` (a run folder or a checkpoint) into ``model``.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the checkpoint holds another model, image shape or parameter shapes.
    """
    path = Path(source)
    if path.is_dir():
        path = RunFolder(path).last_checkpoint
    state = ckpt.load(path, map_location=device)
    theirs = (state.get("model_name"), tuple(state.get("image_shape", ())))
    if theirs != (name, tuple(image_shape)):
        raise ValueError(
            f"train.init_from {source}: its model is {theirs[0]} on images {theirs[1]}, this run "
            f"trains {name} on {tuple(image_shape)}; start from a run of the same model and "
            "preprocessing (train it with this config and data.train set to its data)"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(
            f"train.init_from {source}: its weights do not fit this model's hyperparameters "
            f"({str(error).splitlines()[0]}); use a run trained with the same model.hparams"
        ) from None
    return path


def _parse_toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def _finished(config: cfg.RunConfig, state: dict[str, Any]) -> bool:
    """Whether a checkpoint already satisfies the config's steps or time budget."""
    t = config.train
    out_of_time = t.time_budget_s > 0 and float(state.get("train_time_s", 0.0)) >= t.time_budget_s
    return int(state["step"]) >= t.steps or out_of_time


def check_compatible(saved: cfg.RunConfig, new: cfg.RunConfig, where: Path) -> list[str]:
    """Raise unless ``new`` may continue ``saved``'s checkpoint; return the keys that changed."""
    old_flat, new_flat = _flatten(cfg.to_dict(saved)), _flatten(cfg.to_dict(new))
    changed = sorted(k for k in set(old_flat) | set(new_flat) if old_flat.get(k) != new_flat.get(k))
    blocking = [
        k
        for k in changed
        if any(k == i or k.startswith(i + ".") for i in IDENTITY_KEYS)
        and not same_moved_data(old_flat.get(k), new_flat.get(k), where)  # a moved run tree
    ]
    if blocking:
        details = "; ".join(f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in blocking)
        raise ValueError(
            f"cannot resume {where}: it was trained with a different {', '.join(blocking)} "
            f"({details}). Start over with --no-resume --overwrite (deletes its checkpoint and "
            "results) or train into another folder with --out"
        )
    return [k for k in changed if k != "data.data_dir"]


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _set_threads(threads: int, context: DistContext, device: torch.device) -> int:
    """``train.threads`` or a sensible default: cores / processes on this node under CPU DDP."""
    if threads > 0:
        torch.set_num_threads(threads)
    elif context.enabled and device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(default_threads(context))
    return torch.get_num_threads()


def _load_data(
    config: cfg.RunConfig, data_dir: str | Path | None, progress: bool, context: DistContext
) -> tuple[TrainData, Any, tuple[int, int, int]]:
    """Training, held-out and tracked sets, preprocessed; rank 0 first (it may download)."""
    d = config.data
    show = progress and context.is_main
    preprocessing = preprocessing_of(d)
    if not context.is_main:
        context.barrier()  # let rank 0 download and cache first
    train_set = load_set(d.train, data_dir, d.limit, show)
    raw = np.asarray(train_set.images)
    c, h, w = (int(s) for s in preprocessing.output_shape(tuple(raw.shape[1:])))
    image_shape = (c, h, w)
    train = fit_images(raw, preprocessing, image_shape, f"data.train {d.train!r}")
    val = None
    if d.val:
        val_images = np.asarray(load_set(d.val, data_dir, d.val_limit, show).images)
        val = fit_images(val_images, preprocessing, image_shape, f"data.val {d.val!r}")
    track = load_tracked(list(d.track), preprocessing, image_shape, data_dir, d.track_limit, show)
    if context.is_main:
        context.barrier()
    return TrainData(train=train, val=val, track=track), preprocessing, image_shape


def require_binarization(model: Any, binarize: str) -> None:
    """Refuse a ``[data] binarize`` that the model's decoder does not match, naming the fix.

    A Bernoulli decoder needs binary images and binarises them in its own ``preprocess``; an
    8-bit decoder cannot model ``Bernoulli(y / 255)`` draws, and never sees them.
    """
    binarized = bool(getattr(model, "binarized", False))
    if binarized and binarize != "dynamic":
        raise ValueError(
            f"{type(model).__name__} has a Bernoulli decoder, which models binarised images: "
            'set data.binarize = "dynamic" (it is recorded in preprocessing.json)'
        )
    if binarize and not binarized:
        raise ValueError(
            f"data.binarize = {binarize!r} needs a model with a Bernoulli decoder, and "
            f"{type(model).__name__} models 8-bit images: set model.hparams.likelihood = "
            '"bernoulli" (model hvae), or data.binarize = ""'
        )
