"""The old name of :mod:`genood.experiments.measure`, kept while ``reproduce.py`` imports it.

Import :func:`genood.experiments.measure.evaluate_claims` instead; this alias goes once
``genood.experiments.reproduce`` does.
"""

from genood.experiments.measure import evaluate_claims

__all__ = ["evaluate_claims"]
