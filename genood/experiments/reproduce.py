"""``genood reproduce NAME``: run one experiment end to end into a run folder.

The pipeline, each step's output a file so that any step can be rerun or inspected alone and an
interrupted run resumes where it stopped:

1. data: load the in-distribution train/test sets and every reachable OOD set, apply the
   experiment's recorded preprocessing (``data/``, holdout splits as ``.npz``);
2. models: train the main model, the background model when ``ratio`` is a detector (as many
   steps as the main model reached, unless the budget names ``background_steps``), and at larger
   budgets ensemble members, a CV-Glow and the reverse experiment (``models/<name>/``, resumed
   from checkpoints);
3. statistics: per-sample bits/dim and terms for every set under every model, computed once
   and stored (``statistics/``, see :mod:`genood.ood.statistics`);
4. detection (``detection/``) on those same statistics, and the analyses behind each claim;
   with ``guard`` (a classifier's folder, ``--guard``) the table adds the recommended gate and
   the classifier's baselines, with the guard figures (:mod:`genood.experiments.detection`);
5. ``results.json``, the figures (``figures/``) and ``report.html``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from genood import config as cfg
from genood.experiments.detection import Guard, load_guard, run_detection
from genood.experiments.measure import evaluate_claims
from genood.experiments.spec import ALL_CLAIMS, BudgetSpec, Experiment, load_experiment
from genood.experiments.stages import RunContext, log, provenance
from genood.train.background import main_steps


def reproduce(
    experiment: str | Experiment,
    budget: str = "cpu",
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    include_reverse: bool = True,
    guard: str | Path | None = None,
) -> Path:
    """Run ``experiment`` at ``budget`` into ``out`` and return the path of ``report.html``.

    Args:
        experiment: a shipped experiment name, a TOML path, or an :class:`Experiment`.
        budget: ``quick``, ``cpu`` or ``paper`` (see the experiment's TOML).
        out: the run folder (default ``runs/<experiment>-<budget>``).
        data_dir: where raw data files are (else ``GENOOD_DATA``, the cache, the fetchers).
        device: ``auto``, ``cpu`` or ``cuda`` for training and scoring.
        progress: show progress bars.
        include_reverse: run the reverse experiment for C2 when the budget claims it.
        guard: a classifier's folder (``genood train-classifier``) that reads the
            in-distribution images as loaded: the detection table then adds the recommended
            gate and the classifier's baselines, with guard figures (``--guard``).
    """
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    if exp.sweep is not None:  # one run per lambda, then the curve
        if guard is not None:
            raise ValueError(
                f"--guard is for one run's detection table; {exp.name} is a sweep: run "
                "`genood detect --run RUN/<lambda> --guard DIR` on one of its runs instead"
            )
        from genood.experiments.sweep import reproduce_sweep

        return reproduce_sweep(exp, budget, out, data_dir, device, progress)
    spec = exp.budget(budget)
    run_dir = Path(out) if out else Path("runs") / f"{exp.name}-{budget}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ctx = RunContext(exp, budget, spec, run_dir, data_dir, device, progress)
    ctx.keep_loaded = guard is not None
    log(f"{exp.name} at budget {budget!r} -> {run_dir}")
    ctx.prepare_data()
    classifier: Guard | None = None
    if guard is not None:  # checked before any training
        classifier = load_guard(ctx, guard)
        log(f"guard: classifier {classifier.folder} ({classifier.fingerprint[:12]})")

    main = ctx.train("main", spec.run_config(ctx.data, seed=0))
    scores = {"main": ctx.score_all("main", main)}
    background = None
    if "ratio" in spec.detectors:
        background = ctx.train("background", _background_config(ctx, spec))
    members = [main]
    for index in range(1, spec.ensemble if "C3" in spec.claims else 1):
        member_config = spec.run_config(ctx.data, seed=index)
        _with_steps(member_config, spec.ensemble_steps)
        members.append(ctx.train(f"member-{index}", member_config))
    cv_glow = None
    if spec.cv_glow and ({"C5", "C6"} & set(spec.claims)):
        cv_glow = ctx.train("cv-glow", _cv_glow_config(ctx, spec))
        scores["cv-glow"] = ctx.score_all("cv-glow", cv_glow)

    detection = run_detection(ctx, main, background, waic_members(members, spec), classifier)
    reverse = None
    if "C2" in spec.claims and include_reverse and exp.reverse:
        reverse = _run_reverse(exp, budget, run_dir, data_dir, device, progress)

    results = evaluate_claims(ctx, scores, members, cv_glow, detection, reverse)
    results.update(
        {
            **provenance(exp.name, budget, started),
            "scaled_down": spec.scaled_down,
            "config": cfg.to_dict(spec.run_config(ctx.data)),
        }
    )
    if classifier is not None:
        results["classifier"] = classifier.record()
        results["guard"] = detection["_guard"]
    order = {claim: i for i, claim in enumerate(ALL_CLAIMS)}
    results["claims"] = sorted(results["claims"], key=lambda c: order[c["id"]])
    return ctx.write_report(results)


def waic_members(members: list[Any], spec: BudgetSpec) -> list[Any] | None:
    """The members WAIC is computed over, or ``None`` when there are too few (fewer than 2).

    WAIC's variance term (Choi et al. 2018) measures how much *equally trained* models disagree.
    When the extra members train for fewer steps than the main model (the cpu budgets), the
    main model is left out: with it, the variance measures training length instead (measured on
    mnist-vs-fashion-mnist at the cpu budget: WAIC AUROC 0.09 with the main model, 0.86 without).
    """
    main_steps = cfg.from_dict({"train": spec.train}).train.steps
    alike = members
    if spec.ensemble_steps and spec.ensemble_steps != main_steps and len(members) > 1:
        alike = members[1:]
        log(
            f"waic over the {len(alike)} extra members only: they train for "
            f"{spec.ensemble_steps} steps, the main model for {main_steps}"
        )
    return alike if len(alike) >= 2 else None


def _with_steps(config: cfg.RunConfig, steps: int) -> None:
    """Train a secondary model for ``steps`` (0: as many as the main model), with the main
    model's time budget scaled in proportion, so that a budget's total time stays bounded."""
    if not steps:
        return
    if config.train.time_budget_s:
        config.train.time_budget_s = config.train.time_budget_s * steps / config.train.steps
    config.train.steps = steps


def _background_config(ctx: RunContext, spec: BudgetSpec) -> cfg.RunConfig:
    """Ren et al. (2019): same architecture, inputs mutated with rate mu, L2 on the kernels,
    trained as many steps as the main model reached unless the budget names other steps."""
    config = spec.run_config(ctx.data, seed=100)
    config.data = replace(config.data, mutation_rate=spec.mutation_rate)
    config.train.l2 = spec.background_l2
    if spec.background_steps:
        _with_steps(config, spec.background_steps)
    else:
        reached = main_steps(ctx.model_dir("main"), config)
        config.train.steps = reached.steps
        config.train.time_budget_s = reached.time_budget_s
    return config


def _cv_glow_config(ctx: RunContext, spec: BudgetSpec) -> cfg.RunConfig:
    """CV-Glow tracked on the in-distribution test set and the headline OOD set (C5)."""
    config = spec.run_config(ctx.data, seed=200)
    config.model = cfg.ModelConfig(name="cv-glow", hparams=dict(spec.cv_glow))
    _with_steps(config, spec.cv_glow_steps)
    config.train.eval_every = max(config.train.steps // 10, 1)
    config.data = replace(
        config.data,
        val=ctx.data.in_test,
        val_limit=500,
        track=[ctx.ood_specs[ctx.headline_ood]],
        track_limit=500,
    )
    return config


def _run_reverse(
    exp: Experiment,
    budget: str,
    run_dir: Path,
    data_dir: str | Path | None,
    device: str,
    progress: bool,
) -> dict:
    """Run the reverse experiment in ``run_dir/reverse`` and return its results.

    The reverse run uses this run's budget (same model and training length, reversed data) and
    evaluates only what C2 needs: the data-set table and C1/C4.
    """
    reverse = load_experiment(exp.reverse)
    light = replace(
        exp.budget(budget),
        claims=["C1", "C4"],
        ensemble=1,
        cv_glow={},
        background_steps=0,
        detectors=["likelihood"],
    )
    reverse = replace(reverse, budgets={budget: light})
    log(f"reverse experiment {reverse.name} (for C2)")
    reproduce(reverse, budget, run_dir / "reverse", data_dir, device, progress, False)
    return json.loads((run_dir / "reverse" / "results.json").read_text())
