"""The report's figures, drawn with matplotlib's object API on the Agg canvas.

Every function takes arrays and an output path, writes one PNG (dpi 100, small files) and
returns the path. No pyplot and no global backend switch: figures are plain
:class:`matplotlib.figure.Figure` objects, so drawing is thread-safe and never opens a window.
Bits/dim axes always state ``D``; lower bits/dim means higher likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genood.analysis.training import curve_labels, eval_rows
from genood.io import atomic_path

DPI = 100
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=DPI, format=out.suffix.lstrip(".") or "png")
    return out


def _finish(
    figure: Figure, ax: Any, path: str | Path, xlabel: str, title: str, ylabel: str = "bits/dim"
) -> Path:
    """Label a line plot of bits/dim (lower = more likely), add its legend, save it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (lower = more likely)")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return _save(figure, path)


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError(f"{name} has no finite values to plot")
    return array


def _bpd_label(num_dims: int | None) -> str:
    return "bits/dim" + (f" (D = {num_dims})" if num_dims else "")


def _histograms(ax: Axes, series: Mapping[str, np.ndarray], xlabel: str) -> None:
    """Overlaid density histograms on shared bins.

    The bins cover every value unless a few outliers lie far out (beyond half the 0.5-99.5 %
    span past either end); then they cover that padded span and the legend counts the samples
    outside it instead of hiding them silently.
    """
    data = {label: _finite(values, label) for label, values in series.items()}
    if not data:
        raise ValueError("nothing to plot: no series given")
    lo = min(np.percentile(v, 0.5) for v in data.values())
    hi = max(np.percentile(v, 99.5) for v in data.values())
    pad = 0.5 * (hi - lo)
    lo = max(lo - pad, min(v.min() for v in data.values()))
    hi = min(hi + pad, max(v.max() for v in data.values()))
    if hi - lo < 1e-9:  # e.g. a constant-volume flow's log-det
        pad = max(1e-3, abs(lo) * 1e-3)
        lo, hi = lo - pad, hi + pad
    smallest = min(v.size for v in data.values())
    edges = np.linspace(lo, hi, int(np.clip(2 * np.sqrt(smallest), 10, 60)) + 1).tolist()
    for index, (label, values) in enumerate(data.items()):
        color = COLORS[index % len(COLORS)]
        outside = int(np.sum((values < lo) | (values > hi)))
        text = f"{label}: mean {values.mean():.3f}, n={values.size}"
        if outside:
            text += f", {outside} outside"
        ax.hist(values, bins=edges, density=True, color=color, alpha=0.3, histtype="stepfilled")
        ax.hist(values, bins=edges, density=True, color=color, histtype="step", label=text)
        ax.axvline(values.mean(), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8, frameon=False)


def bpd_histograms(
    scores: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "",
    num_dims: int | None = None,
) -> Path:
    """Histograms of per-sample bits/dim, one per data set (the paper's Figure 1).

    Args:
        scores: ``{label: (N,) bits/dim}``, in legend order.
        path: output PNG.
        title: figure title.
        num_dims: ``D``, stated on the axis.
    """
    figure = _figure(6.4, 4.0)
    ax = figure.add_subplot()
    _histograms(ax, scores, f"{_bpd_label(num_dims)}; lower = more likely")
    ax.set_title(title or "bits/dim per data set")
    return _save(figure, path)


def decomposition_histograms(
    terms: Mapping[str, Mapping[str, np.ndarray]],
    path: str | Path,
    num_dims: int,
    title: str = "",
) -> Path:
    """The distribution and the volume term of each data set, as bits/dim contributions.

    Args:
        terms: ``{label: {"log_pz": (N,), "logdet": (N,)}}`` in nats per sample.
        path: output PNG.
        num_dims: ``D``; each term is shown as ``-term / (D log 2)``.
        title: figure title.
    """
    scale = num_dims * math.log(2.0)
    figure = _figure(10.0, 3.8)
    left, right = figure.subplots(1, 2)
    for ax, term, name in (
        (left, "log_pz", "distribution term  -log p(z) / (D log 2)"),
        (right, "logdet", "volume term  -log|det J| / (D log 2)"),
    ):
        series = {label: -np.asarray(t[term], float) / scale for label, t in terms.items()}
        _histograms(ax, series, f"{name}, bits/dim (D = {num_dims})")
    figure.suptitle(title or "Change-of-variables decomposition (lower = more likely)")
    return _save(figure, path)


def asymmetry_histograms(
    forward: Mapping[str, np.ndarray],
    reverse: Mapping[str, np.ndarray],
    path: str | Path,
    forward_title: str = "forward experiment",
    reverse_title: str = "reverse experiment",
    num_dims: int | None = None,
) -> Path:
    """Bits/dim histograms of the forward and the reverse experiment side by side."""
    figure = _figure(10.0, 3.8)
    left, right = figure.subplots(1, 2)
    for ax, series, title in ((left, forward, forward_title), (right, reverse, reverse_title)):
        _histograms(ax, series, f"{_bpd_label(num_dims)}; lower = more likely")
        ax.set_title(title)
    return _save(figure, path)


def ensemble_plot(
    in_bpd: np.ndarray,
    ood_bpd: np.ndarray,
    path: str | Path,
    num_dims: int | None = None,
    in_label: str = "in-distribution",
    ood_label: str = "OOD",
    title: str = "",
) -> Path:
    """Left: the ensemble's mean bits/dim per sample; right: each member's gap vs the ensemble's.

    Args:
        in_bpd / ood_bpd: ``(M, N)`` bits/dim under each of ``M`` members.
    """
    bpd_in, bpd_ood = np.atleast_2d(in_bpd), np.atleast_2d(ood_bpd)
    figure = _figure(10.0, 3.8)
    left, right = figure.subplots(1, 2, width_ratios=(3, 2))
    series = {f"{in_label} (ensemble)": bpd_in.mean(0), f"{ood_label} (ensemble)": bpd_ood.mean(0)}
    _histograms(left, series, f"mean {_bpd_label(num_dims)} over {len(bpd_in)} models")
    left.set_title(f"ensemble of {len(bpd_in)}: mean log-likelihood")
    gaps = bpd_ood.mean(axis=1) - bpd_in.mean(axis=1)
    members = np.arange(1, len(gaps) + 1)
    right.scatter(members, gaps, color=COLORS[0], label="single models", zorder=3)
    ensemble_gap = float(bpd_ood.mean(0).mean() - bpd_in.mean(0).mean())
    right.axhline(ensemble_gap, color=COLORS[1], label=f"ensemble {ensemble_gap:+.3f}")
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_xticks(members)
    right.set_xlabel("model")
    right.set_ylabel("gap: OOD - in, bits/dim")
    right.set_title("below 0: the OOD set is more likely")
    right.legend(fontsize=8, frameon=False)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def training_curves(
    rows: Sequence[Mapping[str, float]],
    path: str | Path,
    keys: Sequence[str] | None = None,
    step_key: str = "step",
    title: str = "",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Bits/dim of tracked sets against the training step (the paper's "during optimization").

    Args:
        rows: ``metrics.jsonl`` events as :mod:`genood.train` logs them (evaluations are kept,
            ``track_bpd`` dicts flattened, see :func:`genood.analysis.training.eval_rows`), or
            plain rows, e.g. ``[{"step": 100, "val_bpd": 3.1, "ood_bpd": 2.8}, ...]``.
        path: output PNG.
        keys: the columns to plot; default every numeric column naming ``bpd`` or ``bits``.
        step_key: the x column.
        title: figure title.
        labels: display names per key.
    """
    if not rows:
        raise ValueError("no metric rows to plot")
    if any("event" in r or any(isinstance(v, Mapping) for v in r.values()) for r in rows):
        rows = eval_rows(rows)  # metrics.jsonl events: keep evaluations, flatten tracked sets
    labels = {**curve_labels(rows), **(labels or {})}
    if keys is None:  # first-appearance order, so colours follow the logged order
        keys = list(
            dict.fromkeys(
                k
                for row in rows
                for k, v in row.items()
                if k != step_key
                and ("bpd" in k or "bits" in k)
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            )
        )
    if not keys:
        raise ValueError(f"no bits/dim columns among {sorted({k for r in rows for k in r})}")
    figure = _figure(6.4, 4.0)
    ax = figure.add_subplot()
    for index, key in enumerate(keys):
        points = [
            (float(r[step_key]), float(r[key]))
            for r in rows
            if key in r and step_key in r and r[key] is not None and math.isfinite(float(r[key]))
        ]
        if points:
            steps, values = zip(*points)
            label = labels.get(key, key)
            ax.plot(steps, values, marker="o", color=COLORS[index % len(COLORS)], label=label)
    return _finish(figure, ax, path, "training step", title or "bits/dim during training")


def graying_plot(
    curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, title: str = ""
) -> Path:
    """Mean bits/dim against the graying factor, grayer to the right.

    Args:
        curves: ``{label: [(factor, mean_bpd), ...]}`` from
            :func:`genood.analysis.graying.graying_curve`.
    """
    if not curves:
        raise ValueError("no graying curves to plot")
    figure = _figure(6.4, 4.0)
    ax = figure.add_subplot()
    for index, (label, curve) in enumerate(curves.items()):
        points = sorted((float(f), float(b)) for f, b in curve)
        ax.plot(*zip(*points), marker="o", color=COLORS[index % len(COLORS)], label=label)
    ax.invert_xaxis()
    xlabel = "graying factor a: x -> m + a (x - m)   (1 = original, 0 = fully gray)"
    return _finish(figure, ax, path, xlabel, title or "Graying the images", "mean bits/dim")


def second_order_plot(
    variance_differences: Sequence[float],
    gaps: Mapping[str, float],
    path: str | Path,
    channel_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Left: per-channel sums of variance differences (OOD minus in); right: measured and
    predicted ``E_ood[log p] - E_in[log p]`` in nats per image.

    Args:
        variance_differences: ``(C,)`` from
            :func:`genood.analysis.second_order.variance_differences`.
        gaps: ``{"measured": ..., "<prediction>": ...}`` in nats per image.
    """
    diffs = np.asarray(variance_differences, dtype=np.float64)
    names = list(channel_names or [f"channel {c}" for c in range(len(diffs))])
    figure = _figure(10.0, 3.8)
    left, right = figure.subplots(1, 2)
    left.bar(names, diffs, color=[COLORS[3] if d < 0 else COLORS[0] for d in diffs])
    left.axhline(0.0, color="black", linewidth=0.8)
    for x, d in enumerate(diffs):
        left.annotate(f"{d:+.2f}", (x, d), ha="center", va="bottom" if d >= 0 else "top")
    left.set_ylabel("sum over pixels of var(OOD) - var(in)")
    left.set_title("data: variance differences (x/256 scale)")
    labels, values = list(gaps), [float(v) for v in gaps.values()]
    colors = [COLORS[2] if k == "measured" else COLORS[4] for k in labels]
    right.bar(labels, values, color=colors)
    right.axhline(0.0, color="black", linewidth=0.8)
    for x, v in enumerate(values):
        right.annotate(f"{v:+.1f}", (x, v), ha="center", va="bottom" if v >= 0 else "top")
    right.set_ylabel("E_ood[log p] - E_in[log p], nats/image")
    right.set_title("model: gap in log p (> 0: OOD more likely)")
    left.margins(y=0.12)
    right.margins(y=0.12)
    right.tick_params(axis="x", labelsize=8)
    figure.suptitle(title or "Second-order analysis (Nalisnick et al. 2019, Section 5)")
    return _save(figure, path)


def sample_grid(
    images: np.ndarray,
    path: str | Path,
    ncols: int | None = None,
    title: str = "",
    temperature: float | None = None,
) -> Path:
    """A grid of uint8 images ``(N, C, H, W)`` with ``C`` 1 or 3, at most 100 of them.

    ``temperature``, when given, is the sampling temperature, stated under the grid.
    """
    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(
            f"sample_grid expects uint8 (N, 1 or 3, H, W), got {array.dtype} {array.shape}"
        )
    array = array[:100]
    n, c, h, w = array.shape
    cols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 128, dtype=np.uint8)
    for index, image in enumerate(array):
        r, q = divmod(index, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = (
            image.transpose(1, 2, 0)
        )
    inches = min(8.0, max(2.5, 0.45 * cols * max(1.0, w / 8)))
    extra = (0.4 if title else 0.0) + (0.3 if temperature is not None else 0.0)
    figure = _figure(inches, inches * grid.shape[0] / grid.shape[1] + extra)
    ax = figure.add_subplot()
    if c == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if temperature is not None:
        ax.text(0.5, -0.02, f"sampling temperature T = {temperature:g}", transform=ax.transAxes,
                ha="center", va="top", fontsize=9)  # fmt: skip
    return _save(figure, path)


# The figure kinds :mod:`genood.report.store` can redraw from saved arrays.
def smear_curve(
    lambdas: Sequence[float],
    test_bpd: Sequence[float | None],
    gaps: Mapping[str, Sequence[float | None]],
    aurocs: Mapping[str, Sequence[float | None]],
    path: str | Path,
    ood_label: str = "OOD",
) -> Path:
    """The Jacobian penalty sweep: bits/dim, the gap and its parts, and AUROCs against lambda.

    Lambdas are placed at equal spacing in their order (0 has no place on a log axis) and
    labelled with their values; a missing value (``None``) leaves a hole in its line.

    Args:
        lambdas: the swept values, ascending.
        test_bpd: the in-distribution test bits/dim at each.
        gaps: ``{label: values}``, the C1 gap and its parts (OOD minus test, bits/dim).
        aurocs: ``{label: values}``, detector AUROCs (OOD positive).
        ood_label: the OOD set's name for the titles.
    """
    if not lambdas:
        raise ValueError("no lambdas to plot")
    x = np.arange(len(lambdas))

    def values(series: Sequence[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in series], dtype=np.float64)

    figure = _figure(12.0, 3.8)
    panels = figure.subplots(1, 3)
    panels[0].plot(x, values(test_bpd), marker="o", color=COLORS[0], label="test bits/dim")
    panels[0].set_ylabel("bits/dim (lower = more likely)")
    panels[0].set_title("in-distribution test bits/dim")
    for index, (label, series) in enumerate(gaps.items()):
        panels[1].plot(x, values(series), marker="o", color=COLORS[index], label=label)
    panels[1].axhline(0.0, color="#888888", linewidth=0.8)
    panels[1].set_ylabel("bits/dim, OOD minus test")
    panels[1].set_title(f"gap: {ood_label} minus test (< 0: OOD likelier)")
    for index, (label, series) in enumerate(aurocs.items()):
        panels[2].plot(x, values(series), marker="o", color=COLORS[index + 3], label=label)
    panels[2].axhline(0.5, color="#888888", linewidth=0.8)
    panels[2].set_ylim(0.0, 1.0)
    panels[2].set_ylabel("AUROC (OOD positive)")
    panels[2].set_title(f"detecting {ood_label}")
    for ax in panels:
        ax.set_xticks(x, [f"{v:g}" for v in lambdas])
        ax.set_xlabel("Jacobian penalty lambda")
        ax.legend(fontsize=8, frameon=False)
    return _save(figure, path)


FIGURES: dict[str, Callable[..., Any]] = {
    "bpd_histograms": bpd_histograms,
    "decomposition_histograms": decomposition_histograms,
    "asymmetry_histograms": asymmetry_histograms,
    "ensemble_plot": ensemble_plot,
    "training_curves": training_curves,
    "graying_plot": graying_plot,
    "second_order_plot": second_order_plot,
    "sample_grid": sample_grid,
    "smear_curve": smear_curve,
}

__all__ = ["FIGURES", *FIGURES]
