"""Figures of the learned modulators: a gamma heatmap and gamma over training steps.

Matplotlib with the Agg backend (no display needed); files are written atomically.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..peft.config import POSITIONS  # noqa: E402

__all__ = ["plot_gamma_heatmap", "plot_gamma_history", "save_gamma_plots"]

GammaMap = dict[int, dict[str, float]]


def _positions(gmap: GammaMap) -> list[str]:
    used = {p for row in gmap.values() for p in row}
    return [p for p in POSITIONS if p in used] + sorted(used - set(POSITIONS))


def plot_gamma_heatmap(gmap: GammaMap, depth: int | None = None):
    """Plot a (layers x positions) heatmap of gamma; blank where no module sits.

    Args:
        gmap: ``{layer: {position: gamma}}`` (see :func:`rs_metapeft.peft.gamma_map`).
        depth: number of blocks to show (default: up to the deepest layer in ``gmap``).

    Returns:
        The matplotlib figure.

    """
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
        history: ``(global step, gamma map)`` after each outer step.

    Returns:
        The matplotlib figure.

    """
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


def _save_atomic(fig, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_gamma_plots(gmap: GammaMap, history: Sequence[tuple[int, GammaMap]],
                     folder: str | os.PathLike, depth: int | None = None) -> tuple[Path, Path]:
    """Write ``gamma_heatmap.png`` and ``gamma_history.png`` into ``folder``.

    Returns:
        The two paths.

    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    heatmap, over_time = folder / "gamma_heatmap.png", folder / "gamma_history.png"
    _save_atomic(plot_gamma_heatmap(gmap, depth), heatmap)
    _save_atomic(plot_gamma_history(history), over_time)
    return heatmap, over_time
