"""The steps of a reproduction run, each cached as a file in the run folder.

:class:`RunContext` holds what every step needs (the experiment, the budget, the run folder and
the preprocessed data) and offers one method per step. Each method returns early with the
cached result when its output file exists, which is what makes ``genood reproduce`` resumable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from genood import __version__
from genood import config as cfg
from genood.data import load as load_data
from genood.data.errors import DataNotFoundError
from genood.data.transforms import Preprocessing
from genood.experiments.spec import BudgetSpec, DataSpec, Experiment
from genood.io import json_default, save_npz_atomic, write_text_atomic


def log(message: str) -> None:
    """A progress line that does not break tqdm bars."""
    tqdm.write(f"[genood] {message}")


def provenance(experiment: str, budget: str, started: float) -> dict[str, Any]:
    """The keys every ``results.json`` opens with: experiment, budget, when, which genood and
    how long since ``started`` (a ``time.time()``)."""
    return {
        "experiment": experiment,
        "budget": budget,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "genood_version": __version__,
        "runtime_s": round(time.time() - started, 1),
    }


@dataclass
class ResolvedData:
    """The experiment's data specs after holdout splits were written to the run folder."""

    in_train_spec: str
    in_test_spec: str
    pad_to: int
    channels: int
    resize: int


@dataclass
class RunContext:
    """Everything the steps of one run share."""

    experiment: Experiment
    budget_name: str
    budget: BudgetSpec
    run_dir: Path
    data_dir: str | Path | None
    device: str
    progress: bool
    sets: dict[str, np.ndarray] = field(default_factory=dict)
    keep_loaded: bool = False  # keep the images as loaded too (a classifier reads those)
    loaded: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    in_train: str = ""
    in_test: str = ""
    ood: list[str] = field(default_factory=list)
    ood_specs: dict[str, str] = field(default_factory=dict)
    missing_ood: dict[str, str] = field(default_factory=dict)
    data_spec: DataSpec | None = None
    _store: Any = field(default=None, repr=False)

    # --------------------------------------------------------------------------- data
    @property
    def headline_ood(self) -> str:
        """The first reachable OOD set: the one the verdicts are about."""
        return self.ood[0]

    @property
    def data(self) -> DataSpec:
        """The resolved data specs (after :meth:`prepare_data`)."""
        if self.data_spec is None:
            raise RuntimeError("RunContext.data needs prepare_data() first")
        return self.data_spec

    @property
    def preprocessing(self) -> Preprocessing:
        d = self.experiment.data
        return Preprocessing(
            pad_to=d.pad_to, channels=d.channels, resize=d.resize, binarize=d.binarize
        )

    def prepare_data(self) -> None:
        """Load and preprocess every set; write holdout splits as npz so training can use them."""
        d = self.experiment.data
        limit = self.budget.score_limit or None
        data_dir = self.run_dir / "data"
        data_dir.mkdir(exist_ok=True)
        if d.holdout:
            train_spec, test_spec = self._holdout_split(d, data_dir)
        else:
            train_spec, test_spec = d.in_train, d.in_test
        self.data_spec = DataSpec(
            in_train=train_spec,
            in_test=test_spec,
            ood=d.ood,
            pad_to=d.pad_to,
            channels=d.channels,
            resize=d.resize,
            binarize=d.binarize,
        )
        train_label: str | None
        test_label: str | None
        if d.holdout:
            spec = d.in_train
            name = spec if spec.startswith(("npz:", "imagefolder:")) else spec.split(":")[0]
            train_label, test_label = f"{name}:held-in", f"{name}:held-out"
        else:
            train_label = test_label = None  # the loaded sets' own "name:split"
        self.in_train = self._add(train_label, train_spec, limit)
        self.in_test = self._add(test_label, test_spec, None)
        for spec in d.ood:
            try:
                label = self._add(None, spec, limit)
            except FileNotFoundError as error:
                # the whole message (every source tried), on one line for the log and the report
                self.missing_ood[spec] = (
                    error.summary() if isinstance(error, DataNotFoundError) else str(error)
                )
                log(f"OOD set {spec} not available, skipped: {self.missing_ood[spec]}")
                continue
            self.ood.append(label)
            self.ood_specs[label] = spec
        if not self.ood:
            raise FileNotFoundError(
                "none of the OOD sets could be loaded: "
                + "; ".join(f"{k}: {v}" for k, v in self.missing_ood.items())
            )

    def _holdout_split(self, d: DataSpec, data_dir: Path) -> tuple[str, str]:
        """Split a single-split set into train and a seeded held-out test part."""
        data_dir = data_dir.resolve()  # the spec is stored in configs: keep it cwd-independent
        train_path, test_path = data_dir / "in-train.npz", data_dir / "in-test.npz"
        if not (train_path.exists() and test_path.exists()):
            full = load_data(d.in_train, data_dir=self.data_dir, progress=self.progress)
            order = np.random.default_rng(12345).permutation(len(full.images))
            test_idx, train_idx = order[: d.holdout], order[d.holdout :]
            for path, idx in ((train_path, train_idx), (test_path, test_idx)):
                save_npz_atomic(path, images=full.images[idx], labels=full.labels[idx])
        return f"npz:{train_path}", f"npz:{test_path}"

    def _add(self, label: str | None, spec: str, limit: int | None) -> str:
        """Load ``spec``, preprocess it, and keep it under ``label`` (default its own spec): the
        models' input in :attr:`sets` and, with :attr:`keep_loaded`, the images as loaded (what a
        classifier reads) in :attr:`loaded`."""
        data = load_data(spec, data_dir=self.data_dir, limit=limit, progress=self.progress)
        label = label or data.spec
        images = np.asarray(data.images)
        if self.keep_loaded:
            self.loaded[label] = images
        self.sets[label] = self.preprocessing.apply(images)
        self.labels[label] = np.asarray(data.labels)
        return label

    # --------------------------------------------------------------------------- models
    def model_dir(self, name: str) -> Path:
        return self.run_dir / "models" / name

    def train(self, name: str, config: cfg.RunConfig) -> Any:
        """Train (or resume, or reuse) the model ``name`` and return it in eval mode."""
        from genood.train import fit, load_run
        from genood.train.precision import resolve_device

        if self.device != "auto":
            config.train.device = self.device
        config.data.data_dir = str(self.data_dir or "")
        run = self.model_dir(name)
        log(f"model {name}: {config.model.name} {config.model.hparams}, {config.train.steps} steps")
        fit(config, run, resume=True, progress=self.progress, data_dir=self.data_dir)
        return load_run(run, device=resolve_device(self.device)).model

    # --------------------------------------------------------------------------- scores
    def score_all(self, name: str, model: Any) -> dict[str, dict[str, np.ndarray]]:
        """Per-sample scores of every set under model ``name`` (cached npz per set)."""
        return {label: self.score(name, model, label) for label in self.sets}

    @property
    def store(self) -> Any:
        """The run's statistics store (``statistics/``): each set through each model once."""
        if self._store is None:
            from genood.ood import Statistics

            self._store = Statistics(self.run_dir / "statistics", progress=self.progress)
        return self._store

    def score(self, name: str, model: Any, label: str) -> dict[str, np.ndarray]:
        """bits/dim, log p and every term of set ``label`` under model ``name`` (stored)."""
        return self.store.model_pass(model, self.sets[label], name=label, prefix=name)

    # --------------------------------------------------------------------------- report
    def write_report(self, results: dict) -> Path:
        from genood.report import render

        path = self.run_dir / "results.json"
        write_text_atomic(path, json.dumps(results, indent=2, default=json_default))
        return render(self.run_dir)


def file_stem(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)
