"""Score data sets with a trained run.

``score_dataset`` applies the run's recorded preprocessing, streams the images through the model
(bin-midpoint dequantisation, deterministic) and writes per-sample ``bits_per_dim``, ``log_prob``
and every term of the model (``log_pz`` and ``logdet`` for flows, in nats), with the labels, to
``RUN/scores/<name>-<split>.npz``. Under torchrun the images are split across ranks and gathered.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import torch

from genood.io import atomic_path
from genood.train.batches import shard_range
from genood.train.distributed import DistContext
from genood.train.load import LoadedRun, load_run  # also importable from here, as before
from genood.train.lock import RunLock
from genood.train.sets import fit_images, load_set


def scores_path(run_dir: str | Path, name: str, split: str) -> Path:
    """``RUN/scores/<name>-<split>.npz`` with a file-system-safe name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-{split}" if split else name).strip("_")
    return Path(run_dir) / "scores" / f"{stem}.npz"


def score_dataset(
    run_dir_or_loaded: str | Path | LoadedRun, spec: str, **options: Unpack[ScoreOptions]
) -> dict[str, np.ndarray]:
    """Per-sample scores of data set ``spec`` under a trained run (options: :class:`ScoreOptions`).

    Returns:
        ``bits_per_dim``, ``log_prob`` and every model term (float64, ``(N,)``), ``labels``.
    """
    return score_to_file(run_dir_or_loaded, spec, **options)[0]


class ScoreOptions(TypedDict, total=False):
    """How :func:`score_dataset` and :func:`score_to_file` score (every key optional).

    Attributes:
        limit: score at most this many images.
        batch_size: images per forward pass (256).
        device: where to run (default: the loaded run's device, else ``auto``).
        data_dir: data folder.
        save: write ``RUN/scores/<name>-<split>.npz`` (``True``).
        precision: ``fp32`` (default) or ``bf16``.
        preprocessing: override the recorded preprocessing (``--pad-to/--channels/--resize``).
        progress: tqdm bars (``True``).
        context: split the images across ranks (torchrun); the result is gathered on every rank
            and rank 0 saves it.
        store: a :class:`genood.ood.Statistics` that computes the model pass once per (model,
            image set) and keeps it for ``genood detect`` (see :func:`score_to_file`).
    """

    limit: int | None
    batch_size: int
    device: str | torch.device | None
    data_dir: str | Path | None
    save: bool
    precision: str
    preprocessing: Any
    progress: bool
    context: DistContext | None
    store: Any


def score_to_file(
    run_dir_or_loaded: str | Path | LoadedRun,
    spec: str,
    limit: int | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    data_dir: str | Path | None = None,
    save: bool = True,
    precision: str = "fp32",
    preprocessing: Any = None,
    progress: bool = True,
    context: DistContext | None = None,
    store: Any = None,
) -> tuple[dict[str, np.ndarray], Path | None]:
    """:func:`score_dataset` that also returns the path written (``None`` when not saved).

    When it saves, the main process holds the run folder's lock (:mod:`genood.train.lock`)
    while it scores: a training into the same folder meanwhile fails at once, and so does this
    call while one runs.

    ``store``: a :class:`genood.ood.Statistics` (anything with ``model_pass(model, images,
    name)``) that computes the pass once per (model, image set) and keeps it, so that
    ``genood detect`` on the same set reads it back; not used under torchrun.
    """
    if isinstance(run_dir_or_loaded, LoadedRun):
        loaded = run_dir_or_loaded
        if device is not None:
            loaded.model.to(device)
    else:
        loaded = load_run(run_dir_or_loaded, device=device or "auto")
    context = context or DistContext()
    lock = RunLock(loaded.run_dir) if save and context.is_main else contextlib.nullcontext()
    with lock:
        return _score_to_file(
            loaded,
            spec,
            limit,
            batch_size,
            data_dir,
            save,
            precision,
            preprocessing,
            progress,
            context,
            store,
        )


def _score_to_file(
    loaded: LoadedRun,
    spec: str,
    limit: int | None,
    batch_size: int,
    data_dir: str | Path | None,
    save: bool,
    precision: str,
    preprocessing: Any,
    progress: bool,
    context: DistContext,
    store: Any,
) -> tuple[dict[str, np.ndarray], Path | None]:
    model = loaded.model
    image_set = load_set(
        spec, data_dir or loaded.config.data.data_dir or None, limit, progress and context.is_main
    )
    images = fit_images(
        np.asarray(image_set.images),
        preprocessing if preprocessing is not None else loaded.preprocessing,
        model.image_shape,
        f"data set {spec!r}",
    )
    from genood.models.scoring import score_images

    start, stop = shard_range(len(images), context.rank, context.world_size)
    if store is not None and not context.enabled:
        local = store.model_pass(model, images, name=spec)
    else:
        local = score_images(
            model,
            images[start:stop],
            batch_size=batch_size,
            precision=precision,
            progress=progress and context.is_main,
            desc=f"scoring {spec}",
        )
    if context.enabled:
        local = {
            key: context.gather_rows(torch.from_numpy(value).to(model.device), len(images))
            .cpu()
            .numpy()
            for key, value in local.items()
        }
    results = {**local, "labels": np.asarray(image_set.labels, dtype=np.int64)}
    path = None
    if save and context.is_main:
        path = scores_path(loaded.run_dir, _name(image_set, spec), _split(image_set))
        with atomic_path(path) as temporary, open(temporary, "wb") as f:
            np.savez(
                f,
                **results,  # type: ignore[arg-type]  # numpy's stubs read **arrays as allow_pickle
                spec=np.array(spec),
                num_dims=np.array(model.num_dims),
                image_shape=np.array(model.image_shape),
                step=np.array(loaded.step),
                # How the numbers were made (e.g. a VAE's bound and K), for whoever reads the file.
                model=np.array(json.dumps(model.describe(), default=str)),
            )
    return results, path


def _name(image_set: Any, spec: str) -> str:
    return str(getattr(image_set, "name", "") or spec.split(":")[0])


def _split(image_set: Any) -> str:
    """The split; for ``npz:PATH`` and ``imagefolder:PATH`` sets, the file or folder stem."""
    split = str(getattr(image_set, "split", "") or "")
    if getattr(image_set, "name", "") in ("npz", "imagefolder"):
        return Path(split).stem
    return split


def summary(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean, std and quantiles of bits/dim and of each term (nats)."""
    quantiles = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
    out: dict[str, dict[str, float]] = {}
    for key, values in scores.items():
        if key == "labels" or values.ndim != 1 or not np.issubdtype(values.dtype, np.floating):
            continue
        row = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        row.update(
            {
                f"q{int(q * 100):02d}": float(v)
                for q, v in zip(quantiles, np.quantile(values, quantiles))
            }
        )
        out[key] = row
    return out


def format_summary(scores: dict[str, np.ndarray], title: str) -> str:
    """A plain-text table: one row per quantity, columns mean, std, min, 5%...95%, max."""
    table = summary(scores)
    headers = ["", "mean", "std", "min", "5%", "25%", "50%", "75%", "95%", "max"]
    keys = ["mean", "std", "q00", "q05", "q25", "q50", "q75", "q95", "q100"]
    order = ["bits_per_dim"] + [k for k in table if k != "bits_per_dim"]
    labels = {"bits_per_dim": "bits/dim", "log_prob": "log p(x) [nats]"}
    rows = [
        [labels.get(k, f"{k} [nats]")] + [_fmt(table[k][c]) for c in keys]
        for k in order
        if k in table
    ]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [title]
    lines.append(
        "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    )
    for row in rows:
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
