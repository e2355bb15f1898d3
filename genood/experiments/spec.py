"""Experiment definitions: typed dataclasses read from the TOML files beside this module.

An experiment names its data (in-distribution train/test, OOD sets), the reverse experiment
used for the asymmetry claim, and one table per budget (``quick``, ``cpu``, ``paper``) saying
which model to train, for how long, and which claims run at that budget. A budget's ``model`` and
``train`` tables are :class:`genood.config.ModelConfig` / :class:`genood.config.TrainConfig`
fields; everything not given keeps its default.

An experiment with a ``[sweep]`` table is a sweep over the Jacobian penalty
(:class:`SweepSpec`, run by :mod:`genood.experiments.sweep`): its budget is trained once per
value of ``jacobian_penalties``, and the report draws the measurements against lambda.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genood import config as cfg

ALL_CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")


@dataclass
class DataSpec:
    """The data of an experiment.

    Attributes:
        in_train: spec of the training set.
        in_test: spec of the in-distribution test set.
        ood: specs of the OOD sets; the first one available is the headline OOD set.
        holdout: when ``in_train`` and ``in_test`` are the same spec (a data set with a single
            split, such as ``mnist-10k``), hold this many images out of it for testing, drawn
            with a fixed seed; 0 otherwise.
        pad_to / channels / resize: the preprocessing every set goes through (recorded).
        binarize: ``"dynamic"`` for a model of binarised images (``[data] binarize`` of
            :class:`genood.config.DataConfig`); ``""``: 8-bit images.
    """

    in_train: str
    in_test: str
    ood: list[str]
    holdout: int = 0
    pad_to: int = 0
    channels: int = 0
    resize: int = 0
    binarize: str = ""


@dataclass
class BudgetSpec:
    """What runs at one budget.

    Attributes:
        claims: the claims evaluated; the others are reported as "not run at this budget".
        model / train: the main model's config (``ModelConfig`` / ``TrainConfig`` fields).
        background_steps: training steps of the likelihood-ratio background model, trained
            whenever ``ratio`` is among the detectors; 0 (the default): as many as the main
            model reached, with no time budget (Ren et al. train both alike).
        mutation_rate: its pixel mutation rate (Ren et al. 2019).
        background_l2: its L2 weight on the kernels (``train.l2``, the authors' units).
        ensemble: number of models in the ensemble (the main model is the first; C3).
        ensemble_steps: training steps of each extra member.
        cv_glow: train a CV-Glow with these hparams for C5/C6 (empty: skip).
        cv_glow_steps: its training steps.
        score_limit: score at most this many images of the training set and of each OOD
            set; the in-distribution test set is scored whole (its first fifth calibrates the
            detectors, the rest is evaluated against every OOD set).
        graying_factors: the variance-shrinking factors of C7.
        detectors: the detectors in the detection table.
        scaled_down: what this budget scales down, stated in the report.
    """

    claims: list[str]
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    background_steps: int = 0
    mutation_rate: float = cfg.BACKGROUND_MUTATION_RATE
    background_l2: float = cfg.BACKGROUND_L2
    ensemble: int = 1
    ensemble_steps: int = 0
    cv_glow: dict[str, Any] = field(default_factory=dict)
    cv_glow_steps: int = 0
    score_limit: int = 2000
    graying_factors: list[float] = field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25, 0.0])
    detectors: list[str] = field(default_factory=lambda: ["likelihood", "typicality"])
    scaled_down: list[str] = field(default_factory=list)

    def run_config(self, data: DataSpec, seed: int = 0) -> cfg.RunConfig:
        """The main model's resolved :class:`~genood.config.RunConfig`."""
        values = {
            "model": self.model,
            "data": {
                "train": data.in_train,
                "val": "",
                "pad_to": data.pad_to,
                "channels": data.channels,
                "resize": data.resize,
                "binarize": data.binarize,
            },
            "train": {**self.train, "seed": seed},
        }
        return cfg.from_dict(values)


@dataclass
class SweepSpec:
    """A sweep over ``train.jacobian_penalty`` (issue 20: teaching a flow where to smear).

    Attributes:
        jacobian_penalties: the lambda values, each a full training of the budget's model with
            the same steps and seed (:mod:`genood.train.jacobian`).
        jacobian_samples: Hutchinson probes per training step.
        detector: the detector spec whose AUROC is reported beside the raw likelihood's (default
            the recommended detector, ``genood.ood.RECOMMENDED``; a test keeps them equal).
        sensitivity_images: images of the in-distribution test set and of the headline OOD set
            on which ``||df/dx||_F^2 / D`` is measured after training (8 probes each).
    """

    jacobian_penalties: list[float]
    jacobian_samples: int = 1
    detector: str = "dos"
    sensitivity_images: int = 500

    def __post_init__(self) -> None:
        values = [float(v) for v in self.jacobian_penalties]
        if not values or any(not v >= 0 for v in values) or len(set(values)) != len(values):
            raise ValueError(
                "[sweep] jacobian_penalties must be distinct numbers >= 0, e.g. [0, 1e-3, 1e-2], "
                f"got {self.jacobian_penalties!r}"
            )
        self.jacobian_penalties = sorted(values)
        if self.jacobian_samples < 1 or self.sensitivity_images < 1:
            raise ValueError("[sweep] jacobian_samples and sensitivity_images must be >= 1")


@dataclass
class Experiment:
    """One reproduction: its data, its reverse, and its budgets.

    Attributes:
        expect_phenomenon: whether the paper reports the phenomenon (the OOD set more likely)
            in this direction; ``false`` for the reverse experiments of its asymmetry claim,
            whose verdicts are then judged against the paper's outcome for that direction.
    """

    name: str
    description: str
    data: DataSpec
    budgets: dict[str, BudgetSpec]
    reverse: str = ""
    expect_phenomenon: bool = True
    sweep: SweepSpec | None = None

    def budget(self, name: str) -> BudgetSpec:
        """The named budget, or a clear error listing the known ones."""
        if name not in self.budgets:
            raise ValueError(
                f"experiment {self.name!r} has no budget {name!r}; known: {sorted(self.budgets)}"
            )
        return self.budgets[name]


def _parse(values: dict[str, Any], origin: str) -> Experiment:
    try:
        budgets = {}
        for key, budget in values.get("budget", {}).items():
            unknown = set(budget.get("claims", [])) - set(ALL_CLAIMS)
            if unknown:
                raise ValueError(f"budget {key!r} names unknown claims {sorted(unknown)}")
            budgets[key] = BudgetSpec(**budget)
        return Experiment(
            name=values["name"],
            description=values.get("description", ""),
            data=DataSpec(**values["data"]),
            budgets=budgets,
            reverse=values.get("reverse", ""),
            expect_phenomenon=_boolean(values, "expect_phenomenon", True),
            sweep=SweepSpec(**values["sweep"]) if "sweep" in values else None,
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"bad experiment file {origin}: {error}") from error


def _boolean(values: dict[str, Any], key: str, default: bool) -> bool:
    value = values.get(key, default)
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {value!r}")
    return value


def available() -> list[str]:
    """Names of the experiments shipped with genood."""
    files = resources.files("genood.experiments")
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def load_experiment(name_or_path: str) -> Experiment:
    """Load a shipped experiment by name, or an experiment TOML by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return _parse(tomllib.loads(path.read_text()), str(path))
    resource = resources.files("genood.experiments") / f"{name_or_path}.toml"
    if not resource.is_file():
        from genood.experiments.text_spec import available as text_available

        raise ValueError(
            f"unknown experiment {name_or_path!r}; known: {', '.join(available())}; text: "
            f"{', '.join(text_available())} (or give the path of an experiment .toml)"
        )
    return _parse(tomllib.loads(resource.read_text()), name_or_path)
