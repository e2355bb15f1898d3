"""The analyses of Nalisnick et al. (ICLR 2019), each usable on its own and part of the report.

* :mod:`~genood.analysis.histograms`: per-data-set bits/dim summaries and gaps (Figure 1).
* :mod:`~genood.analysis.decomposition`: the distribution term ``log p(z)`` and the volume term
  ``log |det J|`` of the change of variables, and which one carries the gap (Section 4).
* :mod:`~genood.analysis.ensembles`: independently seeded models, mean log-likelihood and
  mixture density, gap and AUROC against single members.
* :mod:`~genood.analysis.training`: in- and out-of-distribution bits/dim during training.
* :mod:`~genood.analysis.second_order`: the second-order expansion of Section 5, from the data's
  variances and from a trained constant-volume flow.
* :mod:`~genood.analysis.graying`: shrinking the data's variance toward its mean (Section 5).

All functions take numpy arrays (per-sample scores, uint8 images) or a scoring callable, and
return plain numbers or small dataclasses with ``to_dict()`` for ``results.json``. Names are
imported lazily, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Decomposition": "decomposition",
    "decompose": "decomposition",
    "term_bits_per_dim": "decomposition",
    "EnsembleResult": "ensembles",
    "ensemble_analysis": "ensembles",
    "ensemble_bits_per_dim": "ensembles",
    "gray_images": "graying",
    "graying_curve": "graying",
    "bpd_gap": "histograms",
    "dataset_summary": "histograms",
    "dataset_table": "histograms",
    "eval_rows": "training",
    "tracked_curves": "training",
    "SecondOrderResult": "second_order",
    "alphas_from_matrices": "second_order",
    "linear_flow_curvature": "second_order",
    "log_prob_hessian": "second_order",
    "predicted_gap": "second_order",
    "second_order_analysis": "second_order",
    "variance_differences": "second_order",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genood.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"genood.analysis.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
