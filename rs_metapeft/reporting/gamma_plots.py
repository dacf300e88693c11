"""Figures of the learned modulators: gamma heatmap, gamma over training, effective scale.

Matplotlib with the Agg backend (no display needed); files are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .selection import (  # noqa: E402
    DEFAULT_THRESHOLD,
    int_keys,
    is_switched_off,
    ordered_positions,
)

__all__ = [
    "EFFECTIVE_SCALE_CMAP",
    "plot_effective_scale_heatmap",
    "plot_gamma_heatmap",
    "plot_gamma_history",
    "save_gamma_plots",
]

GammaMap = dict[int, dict[str, float]]

#: Diverging colormap of the effective-scale heatmap: blue weaker, red stronger than initially.
EFFECTIVE_SCALE_CMAP = "RdBu_r"
# Largest factor (as a power of two) the effective-scale colours tell apart: x1/256 .. x256.
_MAX_OCTAVES = 8


def _positions(gmap: GammaMap) -> list[str]:
    return ordered_positions(gmap)


def plot_gamma_heatmap(gmap: GammaMap, depth: int | None = None):
    """Plot a (layers x positions) heatmap of gamma; blank where no module sits.

    Args:
        gmap: ``{layer: {position: gamma}}`` (see :func:`rs_metapeft.peft.gamma_map`); layers
            may be strings (as in report.json).
        depth: number of blocks to show (default: up to the deepest layer in ``gmap``).

    Returns:
        The matplotlib figure.

    """
    gmap = int_keys(gmap)
    positions = _positions(gmap)
    depth = depth if depth is not None else (max(gmap) + 1 if gmap else 0)
    grid = [[gmap.get(layer, {}).get(p, math.nan) for p in positions] for layer in range(depth)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * max(len(positions), 1), 1.0 + 0.35 * max(depth, 1)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(positions)), positions)
    ax.set_yticks(range(depth), [str(i) for i in range(depth)])
    ax.set_xlabel("position")
    ax.set_ylabel("layer")
    ax.set_title("learned gamma")
    for layer, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(j, layer, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def plot_gamma_history(history: Sequence[tuple[int, GammaMap]]):
    """Gamma of every (layer, position) over training steps, one line each.

    Args:
        history: ``(global step, gamma map)`` after each outer step (``[step, map]`` pairs of
            a report's ``gamma_history`` work too).

    Returns:
        The matplotlib figure.

    """
    history = [(int(step), int_keys(g)) for step, g in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    if history:
        keys = sorted({(layer, p) for _, g in history for layer, row in g.items() for p in row})
        steps = [s for s, _ in history]
        for layer, p in keys:
            ax.plot(steps, [g.get(layer, {}).get(p, math.nan) for _, g in history], lw=0.8,
                    label=f"L{layer} {p}")
        if len(keys) <= 14:
            ax.legend(fontsize=6, ncol=2)
    ax.set_xlabel("training step")
    ax.set_ylabel("gamma")
    ax.set_title("gamma over training")
    fig.tight_layout()
    return fig


def _factor_label(octaves: int) -> str:
    """``-1`` -> ``"x0.5"``, ``0`` -> ``"x1 (initial)"``, ``2`` -> ``"x4"``."""
    if octaves == 0:
        return "\u00d71 (initial)"
    return f"\u00d7{2.0 ** octaves:g}"


def plot_effective_scale_heatmap(scales: Mapping, initial: Mapping | None,
                                 depth: int | None = None,
                                 threshold: float = DEFAULT_THRESHOLD):
    """Effective scale ``alpha * gamma`` per (layer x position), coloured against its start.

    The colour is ``log2(scale / initial)`` on a diverging map centred at 0, so a module still at
    its initial scale gets the map's centre colour (norm value 0.5), twice the initial scale and
    half of it lie equally far on either side, and modules with different alphas are compared
    fairly. Cells show ``alpha * gamma``; switched-off modules (``|scale| < threshold * |initial|``,
    the rule of :func:`rs_metapeft.peft.modulator.switched_off`) are hatched and labelled "off";
    cells without a module are grey and empty.

    Args:
        scales: ``{layer: {position: alpha * gamma}}`` (see
            :func:`rs_metapeft.peft.modulator.effective_scale_map`); layers may be strings (JSON).
        initial: ``{layer: {position: alpha}}`` (see
            :func:`rs_metapeft.peft.modulator.initial_scale_map`); a module missing here (or
            ``initial=None``) counts as starting from 1.0.
        depth: number of blocks to show (default: up to the deepest layer in ``scales``).
        threshold: relative switch-off threshold (the report's ``switch_off_threshold``).

    Returns:
        The matplotlib figure; its first image holds the log2 ratios (NaN: no module).

    """
    scales, initial = int_keys(scales), int_keys(initial)
    positions = _positions(scales)
    depth = depth if depth is not None else (max(scales) + 1 if scales else 0)
    ratio = np.full((depth, len(positions)), np.nan)
    off = np.zeros((depth, len(positions)), dtype=bool)
    for layer in range(depth):
        for j, p in enumerate(positions):
            value = scales.get(layer, {}).get(p)
            if value is None or not math.isfinite(value):
                continue
            start = initial.get(layer, {}).get(p, 1.0)
            off[layer, j] = is_switched_off(value, start, threshold)
            if start != 0 and value / start > 0:
                ratio[layer, j] = math.log2(value / start)
            else:  # zero or sign-flipped: as weak as the map shows
                ratio[layer, j] = -math.inf
    shown = np.abs(ratio[np.isfinite(ratio) & ~off])
    span = int(min(max(1, math.ceil(shown.max())) if shown.size else 1, _MAX_OCTAVES))
    grid = np.ma.masked_invalid(np.clip(ratio, -span, span))
    cmap = plt.get_cmap(EFFECTIVE_SCALE_CMAP).with_extremes(bad="#c8c8c8")
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.4 + 0.9 * len(positions)),
                                    1.6 + 0.35 * max(depth, 1)), layout="constrained")
    image = ax.imshow(grid, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks(range(len(positions)), positions)
    ax.set_yticks(range(depth), [str(i) for i in range(depth)])
    ax.set_xlabel("position")
    ax.set_ylabel("layer")
    starts = {initial.get(layer, {}).get(p, 1.0) for layer, row in scales.items() for p in row}
    start_text = f"initial scale {starts.pop():g}" if len(starts) == 1 else "initial scale = alpha"
    ax.set_title(f"Effective scale alpha\u00b7gamma ({start_text})\nhatched, \"off\": below "
                 f"{100 * threshold:g} % of the initial scale", fontsize=9)
    for layer in range(depth):
        for j, p in enumerate(positions):
            value = scales.get(layer, {}).get(p)
            if value is None:
                continue
            level = 0.5 if np.ma.is_masked(grid[layer, j]) else float(norm(grid[layer, j]))
            colour = "white" if abs(level - 0.5) > 0.3 else "black"
            text = f"{value:.3g}"
            if off[layer, j]:
                ax.add_patch(Rectangle((j - 0.5, layer - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="white", linewidth=0))
                ax.text(j, layer, f"off {value:.2g}", ha="center", va="center", fontsize=7,
                        color="black", bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                             "edgecolor": "none"})
                continue
            ax.text(j, layer, text, ha="center", va="center", fontsize=7, color=colour)
    step = 1 if span <= 3 else 2
    ticks = list(range(-span, span + 1, step))
    if 0 not in ticks:
        ticks = sorted(set(ticks) | {0})
    bar = fig.colorbar(image, ax=ax, ticks=ticks)
    bar.ax.set_yticklabels([_factor_label(t) for t in ticks])
    bar.set_label("effective scale / initial scale")
    return fig


def _save_atomic(fig, path: Path) -> None:
    try:
        with atomic_path(path, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)


def save_gamma_plots(gmap: GammaMap, history: Sequence[tuple[int, GammaMap]],
                     folder: str | os.PathLike, depth: int | None = None,
                     scales: Mapping | None = None, initial: Mapping | None = None,
                     threshold: float = DEFAULT_THRESHOLD) -> tuple[Path, ...]:
    """Write ``gamma_heatmap.png`` and ``gamma_history.png`` into ``folder``.

    With ``scales`` (:func:`rs_metapeft.peft.modulator.effective_scale_map`) also
    ``effective_scale.png`` (see :func:`plot_effective_scale_heatmap`; ``initial`` is
    :func:`rs_metapeft.peft.modulator.initial_scale_map`, ``threshold`` the switch-off threshold).

    Returns:
        The paths written: heatmap, history and, with ``scales``, the effective-scale heatmap.

    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    heatmap, over_time = folder / "gamma_heatmap.png", folder / "gamma_history.png"
    _save_atomic(plot_gamma_heatmap(gmap, depth), heatmap)
    _save_atomic(plot_gamma_history(history), over_time)
    if not scales:
        return heatmap, over_time
    effective = folder / "effective_scale.png"
    _save_atomic(plot_effective_scale_heatmap(scales, initial, depth, threshold), effective)
    return heatmap, over_time, effective
