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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .selection import (  # noqa: E402
    DEFAULT_THRESHOLD,
    int_keys,
    is_switched_off,
    ordered_positions,
)

__all__ = [
    "EFFECTIVE_SCALE_CMAP",
    "GAMMA_CMAP",
    "gamma_colour_norm",
    "plot_effective_scale_heatmap",
    "plot_gamma_heatmap",
    "plot_gamma_history",
    "save_gamma_plots",
]

GammaMap = dict[int, dict[str, float]]

#: The one colour scale of gamma in every figure (report.html, the run folder's PNGs, the docs'
#: figures and tutorials): diverging, centred at the module's initial value. The colour is
#: ``log2(value / initial)``, so a module still at its start gets the centre colour (white),
#: twice and half its start lie equally far on either side (red stronger, blue weaker), and the
#: colours span at least x0.5 .. x2: a change of a few per cent stays near white.
GAMMA_CMAP = "RdBu_r"
#: The effective-scale heatmap uses the same scale (its ratio to the initial scale is gamma).
EFFECTIVE_SCALE_CMAP = GAMMA_CMAP
#: Colour span in octaves (powers of two) either side of the initial value: at least x0.5 .. x2
#: (so that small changes look small), growing in whole octaves up to x1/256 .. x256.
_MIN_OCTAVES, _MAX_OCTAVES = 1, 8


def _positions(gmap: GammaMap) -> list[str]:
    return ordered_positions(gmap)


def gamma_colour_norm(log2_ratios) -> TwoSlopeNorm:
    """The colour norm of :data:`GAMMA_CMAP` for these ``log2(value / initial)`` values.

    Centred at 0 (the initial value); symmetric, spanning the largest finite ratio rounded up to
    a whole octave, at least one (x0.5 .. x2) and at most eight.

    Example:
        >>> norm = gamma_colour_norm([0.06, -0.02])  # gamma 1.04 and 0.986: near the centre
        >>> norm.vmin, norm.vmax, round(float(norm(0.06)), 2)
        (-1.0, 1.0, 0.53)
    """
    values = np.abs(np.asarray(log2_ratios, dtype=float))
    values = values[np.isfinite(values)]
    span = math.ceil(values.max()) if values.size else _MIN_OCTAVES
    span = int(min(max(_MIN_OCTAVES, span), _MAX_OCTAVES))
    return TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)


def _factor_label(octaves: int) -> str:
    """``-1`` -> ``"x0.5"``, ``0`` -> ``"x1 (initial)"``, ``2`` -> ``"x4"``."""
    if octaves == 0:
        return "\u00d71 (initial)"
    return f"\u00d7{2.0 ** octaves:g}"


def _ratio_heatmap(values: GammaMap, initial: GammaMap, depth: int | None, threshold: float,
                   title: str, bar_label: str, digits: str = ".3g"):
    """Layers x positions heatmap of ``values`` coloured by ``log2(value / initial)``.

    Cells show the values; switched-off modules (``|value| < threshold * |initial|``) are
    hatched and labelled "off"; cells without a module are grey and empty. The first image of
    the figure holds the (clipped) log2 ratios, NaN where no module sits.
    """
    positions = _positions(values)
    depth = depth if depth is not None else (max(values) + 1 if values else 0)
    ratio = np.full((depth, len(positions)), np.nan)
    off = np.zeros((depth, len(positions)), dtype=bool)
    for layer in range(depth):
        for j, p in enumerate(positions):
            value = values.get(layer, {}).get(p)
            if value is None or not math.isfinite(value):
                continue
            start = initial.get(layer, {}).get(p, 1.0)
            off[layer, j] = is_switched_off(value, start, threshold)
            if start != 0 and value / start > 0:
                ratio[layer, j] = math.log2(value / start)
            else:  # zero or sign-flipped: as weak as the map shows
                ratio[layer, j] = -math.inf
    norm = gamma_colour_norm(ratio[np.isfinite(ratio) & ~off])
    span = int(norm.vmax)
    grid = np.ma.masked_invalid(np.clip(ratio, -span, span))
    cmap = plt.get_cmap(GAMMA_CMAP).with_extremes(bad="#c8c8c8")
    fig, ax = plt.subplots(figsize=(max(6.0, 2.4 + 0.9 * len(positions)),
                                    1.6 + 0.35 * max(depth, 1)), layout="constrained")
    image = ax.imshow(grid, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks(range(len(positions)), positions)
    ax.set_yticks(range(depth), [str(i) for i in range(depth)])
    ax.set_xlabel("position")
    ax.set_ylabel("layer")
    ax.set_title(f"{title}\nhatched, \"off\": below {100 * threshold:g} % of the initial "
                 "value", fontsize=9)
    for layer in range(depth):
        for j, p in enumerate(positions):
            value = values.get(layer, {}).get(p)
            if value is None:
                continue
            level = 0.5 if np.ma.is_masked(grid[layer, j]) else float(norm(grid[layer, j]))
            colour = "white" if abs(level - 0.5) > 0.3 else "black"
            if off[layer, j]:
                ax.add_patch(Rectangle((j - 0.5, layer - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="white", linewidth=0))
                ax.text(j, layer, f"off {value:.2g}", ha="center", va="center", fontsize=7,
                        color="black", bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                             "edgecolor": "none"})
                continue
            ax.text(j, layer, format(value, digits), ha="center", va="center", fontsize=7,
                    color=colour)
    step = 1 if span <= 3 else 2
    ticks = sorted(set(range(-span, span + 1, step)) | {0})
    bar = fig.colorbar(image, ax=ax, ticks=ticks)
    bar.ax.set_yticklabels([_factor_label(t) for t in ticks])
    bar.set_label(bar_label)
    return fig


def plot_gamma_heatmap(gmap: GammaMap, depth: int | None = None,
                       threshold: float = DEFAULT_THRESHOLD):
    """Plot a (layers x positions) heatmap of gamma on the one gamma scale (:data:`GAMMA_CMAP`).

    Gamma starts at 1: white is unchanged, red stronger, blue weaker, on a log scale; blank
    (grey) where no module sits, hatched where a module is switched off.

    Args:
        gmap: ``{layer: {position: gamma}}`` (see :func:`rs_metapeft.peft.gamma_map`); layers
            may be strings (as in report.json).
        depth: number of blocks to show (default: up to the deepest layer in ``gmap``).
        threshold: relative switch-off threshold (the report's ``switch_off_threshold``).

    Returns:
        The matplotlib figure; its first image holds ``log2(gamma)`` (NaN: no module).

    """
    return _ratio_heatmap(int_keys(gmap), {}, depth, threshold,
                          "Learned gamma (starts at 1; colour on a log scale)", "gamma", ".3f")


def plot_gamma_history(history: Sequence[tuple[int, GammaMap]], threshold: float | None = None):
    """Gamma of every (layer, position) over training steps, one line each, on a log axis.

    Lines are coloured by position (the legend), one line per layer; the grey line is the
    initial value 1.

    Args:
        history: ``(global step, gamma map)`` after each outer step (``[step, map]`` pairs of
            a report's ``gamma_history`` work too).
        threshold: draw the switch-off threshold (gamma below it: "off") when given.

    Returns:
        The matplotlib figure.

    """
    history = [(int(step), int_keys(g)) for step, g in history]
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    if history:
        keys = sorted({(layer, p) for _, g in history for layer, row in g.items() for p in row})
        steps = [s for s, _ in history]
        positions = ordered_positions({0: {p: 0.0 for _, p in keys}})
        colours = plt.get_cmap("tab10")
        for layer, p in keys:
            ax.plot(steps, [g.get(layer, {}).get(p, math.nan) for _, g in history], lw=0.9,
                    color=colours(positions.index(p) % 10), alpha=0.8,
                    marker="." if len(steps) < 30 else None, label=f"L{layer} {p}")
        # Reference lines as collections: ax.lines holds one line per module.
        ax.hlines(1.0, steps[0], steps[-1], color="#888888", lw=0.8, zorder=0)
        low = min((v for _, g in history for row in g.values() for v in row.values()
                   if math.isfinite(v)), default=1.0)
        if threshold and low < 4 * threshold:  # a module near or below "off"
            ax.hlines(threshold, steps[0], steps[-1], color="#b2182b", lw=0.8,
                      linestyle=":", zorder=0)
            ax.text(steps[0], threshold, f" off below {threshold:g}", va="bottom", fontsize=7,
                    color="#b2182b")
        values = [v for _, g in history for row in g.values() for v in row.values()
                  if math.isfinite(v) and v > 0]
        if values and max(values) / min(values) > 4:
            ax.set_yscale("log", base=2)
        layers = sorted({layer for layer, _ in keys})
        handles = [Line2D([], [], color=colours(i % 10), lw=1.5, label=p)
                   for i, p in enumerate(positions)]
        ax.legend(handles=handles, fontsize=7, title=f"position ({len(layers)} layer"
                  f"{'s' * (len(layers) != 1)} each)", title_fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel("gamma (starts at 1)")
    ax.set_title("Gamma after each outer step")
    return fig


def plot_effective_scale_heatmap(scales: Mapping, initial: Mapping | None,
                                 depth: int | None = None,
                                 threshold: float = DEFAULT_THRESHOLD):
    """Effective scale ``alpha * gamma`` per (layer x position), coloured against its start.

    The colour is ``log2(scale / initial)`` on the one gamma scale (:data:`GAMMA_CMAP`, see
    :func:`gamma_colour_norm`), so a module still at its initial scale gets the map's centre
    colour (norm value 0.5), twice the initial scale and half of it lie equally far on either
    side, and modules with different alphas are compared fairly. Cells show ``alpha * gamma``;
    switched-off modules (``|scale| < threshold * |initial|``, the rule of
    :func:`rs_metapeft.peft.modulator.switched_off`) are hatched and labelled "off"; cells
    without a module are grey and empty.

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
    starts = {initial.get(layer, {}).get(p, 1.0) for layer, row in scales.items() for p in row}
    start_text = f"initial scale {starts.pop():g}" if len(starts) == 1 else "initial scale = alpha"
    return _ratio_heatmap(scales, initial, depth, threshold,
                          f"Effective scale alpha\u00b7gamma ({start_text})",
                          "effective scale / initial scale")


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
    _save_atomic(plot_gamma_heatmap(gmap, depth, threshold), heatmap)
    _save_atomic(plot_gamma_history(history, threshold), over_time)
    if not scales:
        return heatmap, over_time
    effective = folder / "effective_scale.png"
    _save_atomic(plot_effective_scale_heatmap(scales, initial, depth, threshold), effective)
    return heatmap, over_time, effective
