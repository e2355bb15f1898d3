"""Text experiments (issue 20, "does analogous behaviour exist for language?"): their TOML files.

A text experiment lives in ``genood/experiments/text_specs/NAME.toml`` (or any path) and names
two *directions*, each a training corpus, its held-out test set and the sets scored against it::

    name = "text-fortunes-en-vs-others"
    [forward]            # the headline direction (L1 is judged on it)
    in_train = "text:fortunes-en:train"
    in_test = "text:fortunes-en:test"
    ood = ["text:fortunes-de:test", "text:python-code:test", "text:repeat-char:test"]
    [reverse]            # the other way round (optional)
    in_train = "text:fortunes-de:train"
    ...
    [budget.cpu]         # one table per budget: the byte model and its training
    score_limit = 2000
    [budget.cpu.model]   # genood.config.ModelConfig fields
    [budget.cpu.train]   # genood.config.TrainConfig fields

``genood reproduce NAME`` runs it (:mod:`genood.experiments.text_run`); the image experiments'
claims C1-C7 do not apply, the text claim L1 does (:mod:`genood.experiments.text_claims`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genood import config as cfg

PACKAGE = "genood.experiments.text_specs"


@dataclass
class TextDirection:
    """One trained model's data: its training corpus, its test set, the sets scored against it."""

    in_train: str
    in_test: str
    ood: list[str]


@dataclass
class TextBudget:
    """What runs at one budget.

    Attributes:
        model / train: the byte model's config (``ModelConfig`` / ``TrainConfig`` fields).
        score_limit: score at most this many texts of each set.
        reference_limit: training texts scored for typicality's reference value ``h``.
        reverse: run the reverse direction too.
        bootstrap: bootstrap resamples of each AUROC's 95 % interval (0: none).
        scaled_down: what this budget scales down, stated in the report.
    """

    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    score_limit: int = 2000
    reference_limit: int = 2000
    reverse: bool = True
    bootstrap: int = 200
    scaled_down: list[str] = field(default_factory=list)

    def run_config(self, direction: TextDirection, seed: int = 0) -> cfg.RunConfig:
        """The byte model's resolved run config for ``direction`` (no image preprocessing)."""
        values = {
            "model": self.model,
            "data": {"train": direction.in_train, "val": ""},
            "train": {**self.train, "seed": seed},
        }
        return cfg.from_dict(values)


@dataclass
class TextExperiment:
    """A text experiment: its two directions and its budgets."""

    name: str
    description: str
    forward: TextDirection
    budgets: dict[str, TextBudget]
    reverse: TextDirection | None = None

    def budget(self, name: str) -> TextBudget:
        """The named budget, or a clear error listing the known ones."""
        if name not in self.budgets:
            raise ValueError(
                f"experiment {self.name!r} has no budget {name!r}; known: {sorted(self.budgets)}"
            )
        return self.budgets[name]


def parse(values: dict[str, Any], origin: str) -> TextExperiment:
    """A :class:`TextExperiment` from a parsed TOML table (errors name ``origin``)."""
    try:
        reverse = values.get("reverse")
        return TextExperiment(
            name=values["name"],
            description=values.get("description", ""),
            forward=TextDirection(**values["forward"]),
            reverse=TextDirection(**reverse) if reverse else None,
            budgets={k: TextBudget(**v) for k, v in values.get("budget", {}).items()},
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"bad text experiment file {origin}: {error}") from error


def available() -> list[str]:
    """Names of the text experiments shipped with genood."""
    files = resources.files(PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def is_text_experiment(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is a shipped text experiment or a TOML file with ``[forward]``."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        try:
            return "forward" in tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError:
            return False
    return name_or_path in available()


def load_text_experiment(name_or_path: str) -> TextExperiment:
    """Load a shipped text experiment by name, or a text experiment TOML by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return parse(tomllib.loads(path.read_text()), str(path))
    resource = resources.files(PACKAGE) / f"{name_or_path}.toml"
    if not resource.is_file():
        raise ValueError(
            f"unknown text experiment {name_or_path!r}; known: {', '.join(available())}"
        )
    return parse(tomllib.loads(resource.read_text()), name_or_path)
