"""The report: ``report.html`` and its figures from a run folder's ``results.json``.

* :func:`render` writes ``RUN_DIR/report.html`` (self-contained: figures embedded, CSS inline).
* :func:`validate_results` checks a ``results.json`` object (see :mod:`genood.report.schema`).
* :func:`save_figure` / :func:`redraw_figures` draw figures and keep their inputs so that
  ``genood report RUN_DIR`` can redraw them; the drawing functions are in
  :mod:`genood.report.figures`.
"""

from genood.report.html import render
from genood.report.schema import validate_results
from genood.report.store import redraw_figures, save_figure

__all__ = ["redraw_figures", "render", "save_figure", "validate_results"]
