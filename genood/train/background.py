"""The background model of Ren et al. (2019), "Likelihood Ratios for Out-of-Distribution Detection".

The background model has the main model's architecture and data, but every training sub-pixel is
replaced by a uniform random value in 0..255 with probability ``mu`` (the mutation rate), drawn
afresh for every batch. The perturbation destroys semantic content while keeping population-level
background statistics, so the likelihood ratio ``log p(x) - log p_background(x)`` cancels the
background term that dominates the raw likelihood. It is trained into ``RUN/background/``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from genood import config as cfg


def background_config(
    config: cfg.RunConfig,
    mutation_rate: float = 0.2,
    steps: int | None = None,
    overrides: list[str] | None = None,
) -> cfg.RunConfig:
    """The main run's config with mutation (and optionally other steps or overrides)."""
    if not 0.0 < mutation_rate <= 1.0:
        raise ValueError(f"the mutation rate must be in (0, 1], got {mutation_rate}")
    values = cfg.to_dict(copy.deepcopy(config))
    values["data"]["mutation_rate"] = float(mutation_rate)
    if steps is not None:
        values["train"]["steps"] = int(steps)
    values = cfg.apply_overrides(values, list(overrides or []))
    return cfg.from_dict(values)


def fit_background(
    run_dir: str | Path,
    mutation_rate: float = 0.2,
    steps: int | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    data_dir: str | Path | None = None,
    distributed: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the background model of the run in ``run_dir`` into ``run_dir/background``.

    ``overwrite`` lets a start-over delete the background's results (see :func:`fit`).
    """
    from genood.train.fit import fit

    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no config.toml; train the main model first (genood train --out {run_dir})"
        )
    main = cfg.load(config_path)
    config = background_config(main, mutation_rate, steps, overrides)
    return fit(config, run_dir / "background", resume, progress, data_dir, distributed, overwrite)
