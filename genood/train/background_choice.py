"""A label-free choice of the background model's mutation rate and L2 weight.

Ren et al. (2019) chose ``mu`` and ``lambda`` for each experiment by the likelihood ratio's AUROC
on an OOD validation set (NotMNIST for FashionMNIST); the alternative they discuss needs no OOD
data: validate on *mutated in-distribution* inputs. :func:`choose_background` does that:

1. it trains one background model per candidate ``(mu, lambda)``, each exactly as the default
   background (:func:`~genood.train.background.fit_background`: the main model's reached steps),
   into ``RUN/background-candidates/mu<mu>-l2_<lambda>/``;
2. it scores the ratio ``bpd(x) - bpd_0(x)`` on held-out in-distribution images (the run's
   ``data.val``, or ``held_out``) and on the proxy OOD set :func:`proxy_ood`: the same images,
   split in as many parts as there are candidate rates, part ``k`` mutated at rate ``k``, so
   that the proxy holds every candidate rate alike;
3. the candidate with the highest proxy AUROC (ties: the first in grid order) is copied to
   ``RUN/background``, and every candidate's AUROC is written to
   ``RUN/background-candidates/choice.json``.

No OOD image and no label is read. The proxy is only a proxy: a background trained at rate
``mu`` models inputs mutated at ``mu``, so the choice measures how well each candidate flags
mutations, which need not rank the candidates as semantic OOD sets would.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genood.train.background import AUTHORS_L2, AUTHORS_RATES, fit_background

CANDIDATES_DIR = "background-candidates"


@dataclass(frozen=True)
class Candidate:
    """One background setting: mutation rate ``mu`` and L2 weight ``lambda``."""

    mutation_rate: float
    l2: float

    @property
    def name(self) -> str:
        """Its folder name under ``RUN/background-candidates``."""
        return f"mu{self.mutation_rate:g}-l2_{self.l2:g}"


def grid(rates: Sequence[float], l2s: Sequence[float]) -> list[Candidate]:
    """Every ``(mu, lambda)`` pair, rates outermost; duplicates dropped, order kept."""
    pairs = [Candidate(float(mu), float(l2)) for mu in rates for l2 in l2s]
    if not pairs:
        raise ValueError("give at least one mutation rate and one L2 weight")
    return list(dict.fromkeys(pairs))


def proxy_ood(images: np.ndarray, rates: Sequence[float], seed: int = 0) -> np.ndarray:
    """``images`` with part ``k`` of ``np.array_split`` mutated at ``rates[k]`` (uint8 copy)."""
    from genood.ood.ratio import mutate

    if not rates:
        raise ValueError("the proxy needs at least one mutation rate")
    rng = np.random.default_rng(seed)
    proxy = images.copy()
    for part, rate in zip(np.array_split(np.arange(len(images)), len(rates)), rates, strict=True):
        proxy[part] = mutate(images[part], rate, rng)
    return proxy


def choose_background(
    run_dir: str | Path,
    rates: Sequence[float] = AUTHORS_RATES,
    l2s: Sequence[float] = AUTHORS_L2,
    held_out: str | None = None,
    limit: int = 1000,
    overrides: list[str] | None = None,
    progress: bool = True,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    say: Any = print,
) -> dict[str, Any]:
    """Train the candidates, choose one on mutated held-out images, copy it to RUN/background.

    Returns the content of ``choice.json``: ``held_out``, ``images``, ``proxy_rates``,
    ``candidates`` (each ``mutation_rate``, ``l2``, ``steps``, ``auroc``) and ``chosen``.

    Raises:
        ValueError: the run has no ``data.val`` and no ``held_out`` is given, or
            ``RUN/background`` exists and ``overwrite`` is not set.
    """
    from genood.models.scoring import score_images
    from genood.ood.metrics import auroc
    from genood.train.load import load_run
    from genood.train.sets import fit_images, load_set

    run_dir = Path(run_dir)
    candidates = grid(rates, l2s)
    target = run_dir / "background"
    if target.exists() and not overwrite:
        raise ValueError(
            f"{target} exists; pass --overwrite to replace it with the chosen candidate"
        )
    main = load_run(run_dir)
    spec = held_out or main.config.data.val
    if not spec:
        raise ValueError(
            f"{run_dir} has no data.val: pass held-out in-distribution images with "
            "--held-out SPEC (e.g. fashion-mnist:test)"
        )
    loaded = load_set(spec, data_dir or main.config.data.data_dir or None, limit, progress)
    images = fit_images(loaded.images, main.preprocessing, main.model.image_shape, spec)
    proxy_rates = sorted({c.mutation_rate for c in candidates})
    proxy = proxy_ood(images, proxy_rates)
    fore = [score_images(main.model, x)["bits_per_dim"] for x in (images, proxy)]

    rows = []
    for candidate in candidates:
        folder = run_dir / CANDIDATES_DIR / candidate.name
        fit_background(
            run_dir,
            candidate.mutation_rate,
            overrides=overrides,
            progress=progress,
            data_dir=data_dir,
            l2=candidate.l2,
            say=say,
            out=folder,
        )
        back = load_run(folder)
        ratio = [
            f - score_images(back.model, x)["bits_per_dim"]
            for f, x in zip(fore, (images, proxy), strict=True)
        ]
        rows.append({**vars(candidate), "steps": back.step, "auroc": auroc(ratio[0], ratio[1])})
        say(f"{candidate.name}: proxy AUROC {rows[-1]['auroc']:.4f} ({back.step} steps)")
    best = max(range(len(rows)), key=lambda i: (rows[i]["auroc"], -i))
    chosen = candidates[best]
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        run_dir / CANDIDATES_DIR / chosen.name, target, ignore=shutil.ignore_patterns(".lock")
    )
    result = {
        "held_out": spec,
        "images": len(images),
        "proxy_rates": proxy_rates,
        "candidates": rows,
        "chosen": rows[best],
        "note": "label-free: held-out in-distribution images against their mutated copies",
    }
    _write_json(run_dir / CANDIDATES_DIR / "choice.json", result)
    say(f"chosen: {chosen.name}, copied to {target}")
    return result


def _write_json(path: Path, value: dict[str, Any]) -> None:
    from genood.io import write_text_atomic

    write_text_atomic(path, json.dumps(value, indent=2))
