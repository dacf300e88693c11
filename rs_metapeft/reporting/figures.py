"""Report figures (matplotlib, Agg backend): confusion, accuracy by class, gamma, curves.

Also the effective scale (alpha * gamma) heatmap and gamma over the outer steps. Every function
takes the report dict (and for curves the rows of a CSV log) and returns a matplotlib figure, or
``None`` when the report has nothing to draw.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on servers and in tests: never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..data.longtail import GROUPS  # noqa: E402
from .gamma_plots import (  # noqa: E402
    plot_effective_scale_heatmap,
    plot_gamma_heatmap,
    plot_gamma_history,
)
from .selection import DEFAULT_THRESHOLD, module_selection  # noqa: E402

__all__ = [
    "GROUP_COLOURS",
    "accuracy_by_count_figure",
    "confusion_figure",
    "curves_note",
    "effective_scale_figure",
    "figure_png",
    "gamma_figure",
    "gamma_history_figure",
    "read_csv_log",
    "training_curves_figure",
]

#: Colour of each group in every figure.
GROUP_COLOURS = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728", "balanced": "#2ca02c"}

# Curves drawn from the CSV log when present, one panel each.
_CURVES = (
    ("train/loss", "training loss"),
    ("val/acc", "validation accuracy"),
    ("val/class_mean_acc", "validation class-mean accuracy"),
    ("meta/val_loss", "meta-validation loss"),
    ("meta/gamma_mean", "mean gamma"),
)


def figure_png(fig: Figure) -> bytes:
    """Render the figure as PNG bytes (and close it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def confusion_figure(report: dict) -> Figure | None:
    """Row-normalised confusion matrix (rows: true class), classes by training count."""
    matrix = np.asarray(report.get("confusion_matrix") or [], dtype=float)
    if matrix.size == 0:
        return None
    names = [row["class"] for row in report["per_class"]]
    order = np.argsort([-row["train_count"] for row in report["per_class"]], kind="stable")
    matrix = matrix[np.ix_(order, order)]
    rates = np.divide(matrix, matrix.sum(1, keepdims=True), out=np.zeros_like(matrix),
                      where=matrix.sum(1, keepdims=True) > 0)
    n = len(names)
    side = min(3 + 0.35 * n, 14)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    labels = [names[i] for i in order]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (most training images first)")
    ax.set_title("Confusion matrix (colour: share of the true class)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def accuracy_by_count_figure(report: dict) -> Figure | None:
    """Per-class test accuracy, classes sorted by training count, bars coloured by group.

    Each bar is labelled with its accuracy; the axis leaves room above 100 % for the labels, and
    the legend sits beside the plot, so neither runs into the title or the bars.
    """
    rows = sorted(report.get("per_class") or [], key=lambda r: -r["train_count"])
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(rows) + 3), 4), layout="constrained")
    x = np.arange(len(rows))
    accuracy = [100 * r["accuracy"] for r in rows]
    ax.bar(x, accuracy, color=[GROUP_COLOURS.get(r["group"], "grey") for r in rows])
    for xi, value in zip(x, accuracy, strict=True):
        ax.text(xi, value + 1.5, f"{value:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [f"{r['class']}\n({r['train_count']})" for r in rows], rotation=90,
                  fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 112)  # room for the labels of 100 % bars below the title
    ax.set_yticks(range(0, 101, 20))
    ax.set_xlabel("class (training images), most to fewest")
    present = [g for g in GROUP_COLOURS if any(r["group"] == g for r in rows)]
    ga = report.get("group_accuracy") or {}
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=f"{g}: {100 * ga[g]:.1f} %"
                             if ga.get(g) is not None else g) for g in present or GROUPS],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title="group (mean)", title_fontsize=8, frameon=False)
    ax.set_title("Accuracy by class, sorted by training count", pad=8)
    return fig


def gamma_figure(report: dict) -> Figure | None:
    """Learned gamma as a heatmap, layers (rows) x PEFT positions (columns), on the one gamma scale.

    See :func:`rs_metapeft.reporting.gamma_plots.plot_gamma_heatmap`; ``None`` without gamma.
    """
    gamma = report.get("gamma") or {}
    if not gamma:
        return None
    threshold = report.get("switch_off_threshold")
    return plot_gamma_heatmap(gamma, threshold=float(threshold) if isinstance(
        threshold, int | float) else DEFAULT_THRESHOLD)


def effective_scale_figure(report: dict) -> Figure | None:
    """Effective scale alpha * gamma per layer x position, coloured against the initial scale.

    See :func:`rs_metapeft.reporting.gamma_plots.plot_effective_scale_heatmap`; ``None`` when
    the report has no ``effective_scale``.
    """
    selection = module_selection(report)
    if selection is None or not selection.scales:
        return None
    return plot_effective_scale_heatmap(selection.scales, selection.initial,
                                        threshold=selection.threshold)


def gamma_history_figure(report: dict) -> Figure | None:
    """Gamma of every module after each outer step (``None`` without a ``gamma_history``)."""
    selection = module_selection(report)
    if selection is None or not selection.history:
        return None
    return plot_gamma_history(selection.history, selection.threshold)


def read_csv_log(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a Lightning ``metrics.csv`` (empty when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def training_curves_figure(rows: list[dict[str, str]]) -> Figure | None:
    """Training loss, validation accuracy and meta curves against the step, one panel each.

    Short runs log few points: each point is marked, a panel with a single point writes its
    value, and every panel's title says how many points it has when they are few.
    """
    series = []
    for key, title in _CURVES:
        points = [(float(r["step"]), float(r[key])) for r in rows
                  if r.get(key) not in (None, "") and r.get("step") not in (None, "")]
        if points:
            series.append((title, np.array(points)))
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(3.6 * len(series), 3), squeeze=False,
                             layout="constrained")
    for ax, (title, points) in zip(axes[0], series, strict=True):
        ax.plot(points[:, 0], points[:, 1], marker="." if len(points) < 30 else None)
        if len(points) == 1:
            ax.annotate(f"{points[0, 1]:.3g}", points[0], textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
        few = f" ({len(points)} point{'s' * (len(points) != 1)})" if len(points) < 10 else ""
        ax.set_title(title + few, fontsize=10)
        ax.set_xlabel("step")
    return fig


def curves_note(rows: list[dict[str, str]], training: dict | None) -> str | None:
    """One sentence on what the training curves can show, for short runs; ``None`` otherwise.

    Args:
        rows: the CSV log's rows.
        training: the report's ``training`` (``steps``, ``log_every_n_steps``), if known.

    Example:
        >>> curves_note([], {"steps": 3, "log_every_n_steps": 5})
        'No training-loss curve: the run took 3 steps and logs the loss every 5 \
(trainer.log_every_n_steps); set it lower to see one.'
    """
    losses = sum(1 for r in rows if r.get("train/loss") not in (None, ""))
    if not training or not training.get("log_every_n_steps"):
        return None
    steps, every = training.get("steps"), training["log_every_n_steps"]
    if losses == 0 and steps:
        return (f"No training-loss curve: the run took {steps} steps and logs the loss every "
                f"{every} (trainer.log_every_n_steps); set it lower to see one.")
    if 0 < losses < 10:
        return (f"The training loss has {losses} point{'s' * (losses != 1)}: logged every "
                f"{every} steps (trainer.log_every_n_steps) over {steps} steps.")
    return None
