"""The detector registry: one place that knows every score, its grammar, help and needs.

A detector class registers itself by defining ``name`` (see :class:`~genood.ood.base.Detector`):
adding a score to genood is one source file in ``genood/ood/`` plus one import line in
``genood/ood/__init__.py``. Everything else comes from here: parsing score specs, building
detectors, loading saved ones, ``genood detect --help`` and the README's score table.

Score specs::

    NAME[:OPTION[:OPTION]]        e.g. likelihood, complexity:jpegxl, llr:2:mode, dos:png:terms
    SPEC+SPEC[+SPEC...]           the Combined score of its components (max of robust z-scores)
    SPEC+SPEC@METHOD              the same with METHOD max-z, fisher or simes (p-value combination)
    SPEC,SPEC,...                 a list of scores (the CLI's --score)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genood.data.transforms import Preprocessing
    from genood.models.base import LikelihoodModel
    from genood.ood.base import Detector
    from genood.ood.statistics import Statistics

_REGISTRY: dict[str, type[Detector]] = {}

# The recommended detector: the default of `genood detect` and of GuardedClassifier.recommended.
# Chosen by the rule declared in docs/detection.md ("Declared protocol") on its validation sets
# only; its measured table, held-out sets and reverse pair included, is in docs/results.md
# ("The recommended detector").
RECOMMENDED = "dos"
# The recommended gate: the detector of a density gate whose classifier gives its logits and
# features (`genood detect --guard`, GuardedClassifier.recommended with a genood.ood.Classifier):
# the Glow's density of states, the classifier's Mahalanobis distance and its energy at T = 2,
# their conformal p-values combined by Fisher. Chosen by the same rule among candidates that may
# also read that classifier, which the gate holds and runs anyway (docs/results.md, "The gate
# with the classifier's Mahalanobis score (session 9)"); T = 2 won the same rule over T in
# {0.5, 1, 2, 5, 10} in session 8. Without a classifier the recommendation stays RECOMMENDED.
RECOMMENDED_GATE = "dos+mahalanobis+energy:2@fisher"
# The gate of a classifier that gives its logits but no features (a user's own wrapper): the
# session-8 recommended gate, which the rule above ranked second.
RECOMMENDED_LOGITS_GATE = "dos+energy:2@fisher"

# What a detector needs, and how a user gets it.
NEED_HINTS = {
    "background": "a background model: train it with `genood train-background --run RUN` "
    "(or pass --background RUN)",
    "ensemble": "an ensemble of at least 2 equally trained models: train members with "
    "`genood train --config RUN/config.toml --set train.seed=K --out RUN/ensemble/seed-K` "
    "(or pass --ensemble RUN_A,RUN_B)",
    "classifier": "a classifier p(y|x): train one with `genood train-classifier --data SET "
    "--out DIR` and pass it with `--guard DIR` (in Python: build(..., classifier=...))",
    "model": "a likelihood model",
}


def register(cls: type[Detector]) -> None:
    """Called by ``Detector.__init_subclass__`` for every class that defines ``name``."""
    known = _REGISTRY.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"two detectors are named {cls.name!r}: {known} and {cls}")
    _REGISTRY[cls.name] = cls


def detector_class(name: str) -> type[Detector]:
    """The class registered as ``name`` (``combined`` included)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown score {name!r}; known: {', '.join(available())}")
    return _REGISTRY[name]


def detector_types() -> dict[str, type[Detector]]:
    """Every registered detector class by name, ``combined`` included."""
    return dict(_REGISTRY)


def available() -> list[str]:
    """The score names a user can ask for (``a+b`` combines them), sorted."""
    return sorted(name for name, cls in _REGISTRY.items() if cls.listed)


def split_list(text: str | Sequence[str]) -> list[str]:
    """``"a, b+c"`` or ``["a", "b+c"]`` -> ``["a", "b+c"]``, blanks dropped."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    return [s for s in names if s]


def parse(text: str | Sequence[str], codec: str = "png") -> list[str]:
    """Check a list of score specs (``"likelihood,complexity:jpegxl,llr:2"``) and return it.

    Raises:
        ValueError: naming the bad spec and the grammar it should follow.
    """
    specs = split_list(text)
    if not specs:
        raise ValueError(f"no score given; choose from {', '.join(available())}")
    if len(set(specs)) != len(specs):
        raise ValueError(f"score listed twice in {specs}")
    for spec in specs:
        parts = _components(spec)
        if len(parts) != len(set(parts)):
            raise ValueError(f"a combination lists a score twice: {spec!r}")
        for part in parts:
            options(part, codec)
    return specs


def _components(spec: str) -> list[str]:
    """``"a+b@fisher"`` -> ``["a", "b"]``, checking the combination method."""
    from genood.ood.combine import METHODS

    body, at, method = spec.partition("@")
    parts = body.split("+")
    if at and (len(parts) < 2 or method not in METHODS):
        raise ValueError(
            f"{spec!r}: @METHOD combines two or more scores (A+B@METHOD) with METHOD one of "
            f"{', '.join(METHODS)}"
        )
    return parts


def options(spec: str, codec: str = "png") -> dict[str, Any]:
    """The constructor keyword arguments that one spec (``llr:2:mode``) stands for."""
    name, *opts = spec.split(":")
    if name not in available():
        raise ValueError(f"unknown score {spec!r}; known: {', '.join(available())}")
    return _REGISTRY[name].parse_options(opts, codec)


def needs(spec: str) -> set[str]:
    """The model arguments a spec needs (``{"model", "background"}`` for ``ratio``)."""
    return {n for part in _components(spec) for n in _REGISTRY[part.split(":")[0]].needs}


def build(
    spec: str,
    model: LikelihoodModel | None = None,
    *,
    background: LikelihoodModel | None = None,
    ensemble: Sequence[LikelihoodModel] | None = None,
    store: Statistics | None = None,
    codec: str = "png",
    classifier: Any = None,
    preprocessing: Preprocessing | None = None,
) -> Detector:
    """The unfitted detector of one spec, its statistics gathered through ``store``.

    ``preprocessing`` (a run's) maps the images as loaded to the model's input; a combination
    of a classifier's score and a model's (``dos+energy``) needs it when the two shapes differ
    (see :class:`~genood.ood.combine.Combined`).

    Raises:
        ValueError: for a spec that does not parse, or a model the score needs that is missing
            (the message says how to get it).
    """
    from genood.ood.statistics import Statistics

    store = store if store is not None else Statistics()
    if "+" in spec:
        from genood.ood.combine import Combined

        parts = [
            build(
                part,
                model,
                background=background,
                ensemble=ensemble,
                store=store,
                codec=codec,
                classifier=classifier,
            )
            for part in _components(spec)
        ]
        method = spec.partition("@")[2] or "max-z"
        return Combined(parts, method=method, preprocessing=preprocessing, store=store)
    name = spec.split(":")[0]
    kwargs = options(spec, codec)
    cls = _REGISTRY[name]
    models: dict[str, Any] = {
        "model": model,
        "background": background,
        "ensemble": ensemble,
        "classifier": classifier,
    }
    for need in cls.needs:
        value = models[need]
        if value is None or (need == "ensemble" and len(value) < 2):
            raise ValueError(f"the {name} score needs {NEED_HINTS[need]}")
    return cls(**{n: models[n] for n in cls.needs}, **kwargs, store=store)


def help_text(width: int = 96, column: int = 24) -> str:
    """The score list of ``genood detect --help``, one wrapped entry per registered score."""
    import textwrap

    entries = [(_REGISTRY[n].grammar or n, _REGISTRY[n].summary) for n in available()]
    entries.append(("A+B", "flag inputs extreme on any of A, B (max of robust z-scores)"))
    entries.append(
        (
            "A+B@METHOD",
            "combine A, B by METHOD: max-z (as A+B), fisher or simes (conformal p-values)",
        )
    )
    lines = []
    for grammar, summary in entries:
        head = f"  {grammar:<{column - 3}} "
        lines.append(
            textwrap.fill(summary, width, initial_indent=head, subsequent_indent=" " * column)
        )
    return "\n".join(lines)


def score_table() -> str:
    """The Markdown table of scores (docs/detectors.md), generated from the registry."""
    rows = ["| score | what it computes (higher = more anomalous) | needs |", "| --- | --- | --- |"]
    for name in available():
        cls = _REGISTRY[name]
        needs_text = ", ".join(
            f"{need} ({cls.model_family})" if need == "model" and cls.model_family else need
            for need in cls.needs
        )
        summary = cls.summary.replace("|", "\\|")
        rows.append(f"| `{cls.grammar or name}` | {summary} | {needs_text} |")
    return "\n".join(rows)
