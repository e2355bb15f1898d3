"""genood: does my generative model know what it doesn't know?

Likelihood models (Glow, CV-Glow, RealNVP, PixelCNN, VAEs) with decomposed bits/dim, real image
data sets, out-of-distribution detectors, and the analyses of Nalisnick et al. (ICLR 2019).

The subpackages load on first use, so ``import genood`` is instant (the CLI's ``--help`` relies
on it) and ``genood.models.build(...)`` works after a bare ``import genood``:

    >>> import genood
    >>> model = genood.models.build("glow", (1, 32, 32), levels=3, steps=4)  # doctest: +SKIP
    >>> run = genood.train.load_run("runs/hello")                            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Subpackages and modules reachable as attributes of ``genood``, imported on first access.
__all__ = [
    "__version__",
    "analysis",
    "config",
    "data",
    "densities",
    "experiments",
    "flows",
    "models",
    "ood",
    "report",
    "train",
]
SUBMODULES = tuple(name for name in __all__ if name != "__version__")

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports on demand
    from genood import analysis as analysis
    from genood import config as config
    from genood import data as data
    from genood import densities as densities
    from genood import experiments as experiments
    from genood import flows as flows
    from genood import models as models
    from genood import ood as ood
    from genood import report as report
    from genood import train as train


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        return importlib.import_module(f"genood.{name}")
    raise AttributeError(f"module 'genood' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *SUBMODULES])
