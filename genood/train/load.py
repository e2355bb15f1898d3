"""Load a trained run: its model in eval mode, with the config and preprocessing it recorded.

:func:`load_run` reads ``RUN/checkpoints/last.pt`` (``weights_only``), rebuilds the model from the
resolved config it holds and returns a :class:`LoadedRun`; scoring, detection, the background
model and the report all start from it. ``hparams`` may change how the model *scores* (a VAE's
``iw_samples``) but never its parameters.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genood import config as cfg
from genood.models.base import LikelihoodModel
from genood.train import checkpoint as ckpt
from genood.train.run import RunFolder, read_json_object


@dataclass
class LoadedRun:
    """A trained model with what is needed to feed it data.

    Attributes:
        model: the model in eval mode.
        config: the run's resolved config.
        preprocessing: the recorded :class:`~genood.data.transforms.Preprocessing`.
        run_dir: the run folder.
        step: optimiser steps the model was trained for.
        finished: whether the run reached its configured steps (or time budget).
    """

    model: LikelihoodModel
    config: cfg.RunConfig
    preprocessing: Any
    run_dir: Path
    step: int
    finished: bool


def load_run(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    hparams: Mapping[str, Any] | None = None,
) -> LoadedRun:
    """The model of ``run_dir/checkpoints/last.pt`` in eval mode, with config and preprocessing.

    Args:
        run_dir: the run folder.
        device: where to put the model.
        hparams: model hyper-parameters to change for this use only, e.g. a VAE's scoring
            settings ``{"iw_samples": 10, "iw_batch": 64}``. They must leave the parameters as
            trained; the returned ``config`` shows them.

    Raises:
        FileNotFoundError: when the folder has no checkpoint.
        ValueError: when ``hparams`` changes the model's parameters (its architecture).
    """
    from genood.data.transforms import Preprocessing
    from genood.models import build
    from genood.train.precision import resolve_device

    run = RunFolder(run_dir, writer=False)
    if not run.has_checkpoint():
        raise FileNotFoundError(
            f"{run.root} has no checkpoint ({run.last_checkpoint}); train it first with "
            f"genood train --out {run.root} --config CONFIG"
        )
    device = resolve_device(device) if isinstance(device, str) else device
    state = ckpt.load(run.last_checkpoint, map_location=device)
    config = cfg.from_dict(tomllib.loads(state["config"]))
    if hparams:
        config.model.hparams = {**config.model.hparams, **hparams}
    model = build(state["model_name"], tuple(state["image_shape"]), **config.model.hparams)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        if not hparams:
            raise
        # Only settings that leave the parameters alone (how a model scores) can change.
        raise ValueError(
            f"the model hyper-parameters {dict(hparams)} change the parameters of the model "
            f"trained in {run.root}, which cannot be loaded into it ({_first_mismatch(error)}); "
            "only scoring settings (such as a VAE's iw_samples, iw_batch, score_bound) can be "
            "changed"
        ) from error
    model.to(device).eval()
    if run.preprocessing_path.is_file():
        recorded = read_json_object(
            run.preprocessing_path,
            "delete it to use the [data] table of the run's config instead",
        )
        try:
            preprocessing = Preprocessing.from_dict(recorded)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{run.preprocessing_path} is not a preprocessing record ({error}); delete it to "
                "use the [data] table of the run's config instead"
            ) from error
    else:
        d = config.data
        preprocessing = Preprocessing(pad_to=d.pad_to, channels=d.channels, resize=d.resize)
    return LoadedRun(
        model=model,
        config=config,
        preprocessing=preprocessing,
        run_dir=run.root,
        step=int(state["step"]),
        finished=run.done() is not None,
    )


def _first_mismatch(error: Exception) -> str:
    """The first of ``load_state_dict``'s error lines (it prints one per tensor), and a count."""
    details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    if not details:
        return str(error).strip()
    more = f"; {len(details) - 1} more" if len(details) > 1 else ""
    first = details[0].rstrip(".")
    return (first if len(first) <= 240 else first[:240] + "...") + more


__all__ = ["LoadedRun", "load_run"]
