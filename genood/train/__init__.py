"""Training, checkpoints, resume, DDP and scoring of likelihood models.

* :func:`fit` trains a :class:`~genood.config.RunConfig` into a run folder (resumes by default).
* :func:`load_run` loads the trained model with its config and preprocessing.
* :func:`score_dataset` writes per-sample bits/dim and terms of a data set to ``RUN/scores``.
* :func:`fit_background` trains Ren et al.'s background model into ``RUN/background``.
"""

from genood.train.background import background_config, fit_background
from genood.train.fit import fit
from genood.train.load import LoadedRun, load_run
from genood.train.nonfinite import NonFiniteError
from genood.train.run import read_metrics
from genood.train.score import format_summary, score_dataset, scores_path

__all__ = [
    "LoadedRun",
    "NonFiniteError",
    "background_config",
    "fit",
    "fit_background",
    "format_summary",
    "load_run",
    "read_metrics",
    "score_dataset",
    "scores_path",
]
