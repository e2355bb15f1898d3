"""The background model of Ren et al. (2019), "Likelihood Ratios for Out-of-Distribution Detection".

The background model has the main model's architecture and data, but every training sub-pixel is
replaced by a uniform random value in 0..255 with probability ``mu`` (the mutation rate), drawn
afresh for every batch, and its convolution and linear kernels carry an L2 penalty ``lambda``
(``train.l2``, in the authors' units: ``lambda * sum(w^2)`` added to each image's nats). The
perturbation destroys semantic content while keeping population-level background statistics, so
the likelihood ratio ``log p(x) - log p_background(x)`` cancels the background term that
dominates the raw likelihood. It is trained into ``RUN/background/``.

Defaults (the authors' setting, with nothing chosen on OOD data):

* **equal training**: the background trains as many optimiser steps as the main model *reached*
  (``done.json``), with no time budget, so that a shared machine cannot give the two models
  unequal training; while the main run is unfinished (the two trained side by side) it gets the
  main run's ``train.steps`` and ``train.time_budget_s``;
* ``mu = 0.2`` and ``lambda = 10``: the middle of the authors' grid (``mu`` in 0.1, 0.2, 0.3;
  ``lambda`` in 0, 10, 100), which they searched per experiment by the ratio's AUROC on OOD
  validation data (NotMNIST for FashionMNIST); see ``docs/detectors.md``.

Contract: :func:`fit_background` never changes the main run; the background's resolved
``config.toml`` records ``data.mutation_rate``, ``train.l2``, ``train.steps`` and
``train.time_budget_s`` as trained.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genood import config as cfg

MUTATION_RATE = cfg.BACKGROUND_MUTATION_RATE
L2 = cfg.BACKGROUND_L2
AUTHORS_RATES = (0.1, 0.2, 0.3)
AUTHORS_L2 = (0.0, 10.0, 100.0)


@dataclass(frozen=True)
class MainSteps:
    """How long the background trains, read from the main run.

    Attributes:
        steps: the optimiser steps the background trains for.
        time_budget_s: its time budget (0: none).
        note: where ``steps`` came from, for the user.
    """

    steps: int
    time_budget_s: float
    note: str


def main_steps(run_dir: str | Path, config: cfg.RunConfig) -> MainSteps:
    """The steps the main run in ``run_dir`` reached, else (unfinished) the steps it asks for."""
    from genood.train.run import RunFolder

    done = RunFolder(run_dir, writer=False).done()
    if done is not None and int(done.get("step", 0)) > 0:
        step = int(done["step"])
        return MainSteps(step, 0.0, "as many as the main model reached, from its done.json")
    t = config.train
    return MainSteps(
        t.steps, t.time_budget_s, "the main run is unfinished: its configured steps and budget"
    )


def background_config(
    config: cfg.RunConfig,
    mutation_rate: float = MUTATION_RATE,
    steps: int | None = None,
    overrides: list[str] | None = None,
    l2: float = L2,
    time_budget_s: float | None = None,
) -> cfg.RunConfig:
    """The main run's config with mutation and L2 (and optionally steps, budget, overrides).

    ``overrides`` (``key=value``) apply last, so ``--set train.l2=...`` wins over ``l2``.
    """
    if not 0.0 < mutation_rate <= 1.0:
        raise ValueError(f"the mutation rate must be in (0, 1], got {mutation_rate}")
    if not l2 >= 0.0:
        raise ValueError(f"the L2 weight must be >= 0, got {l2}; 0 turns the penalty off")
    values = cfg.to_dict(copy.deepcopy(config))
    values["data"]["mutation_rate"] = float(mutation_rate)
    values["train"]["l2"] = float(l2)
    if steps is not None:
        values["train"]["steps"] = int(steps)
    if time_budget_s is not None:
        values["train"]["time_budget_s"] = float(time_budget_s)
    values = cfg.apply_overrides(values, list(overrides or []))
    return cfg.from_dict(values)


def fit_background(
    run_dir: str | Path,
    mutation_rate: float = MUTATION_RATE,
    steps: int | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    data_dir: str | Path | None = None,
    distributed: bool = False,
    overwrite: bool = False,
    l2: float = L2,
    say: Any = print,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Train the background model of the run in ``run_dir`` into ``out`` (``run_dir/background``).

    ``steps`` defaults to :func:`main_steps` (equal training); an explicit ``steps`` keeps the
    main run's time budget. ``overwrite`` lets a start-over delete the background's results
    (see :func:`fit`). ``say`` gets one line on the steps chosen.
    """
    from genood.train.fit import fit

    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no config.toml; train the main model first (genood train --out {run_dir})"
        )
    main = cfg.load(config_path)
    budget, note = None, "--steps"
    if steps is None:
        chosen = main_steps(run_dir, main)
        steps, budget, note = chosen.steps, chosen.time_budget_s, chosen.note
    config = background_config(main, mutation_rate, steps, overrides, l2, budget)
    t = config.train
    say(
        f"background: {t.steps} steps ({note}), time budget {t.time_budget_s:g} s, "
        f"mu={config.data.mutation_rate:g}, L2={t.l2:g}"
    )
    folder = Path(out) if out is not None else run_dir / "background"
    return fit(config, folder, resume, progress, data_dir, distributed, overwrite)
