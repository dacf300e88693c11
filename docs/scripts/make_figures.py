"""Draw the documentation's figures from a real run's report.json.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python docs/scripts/make_figures.py [runs/demo/lightning_logs/version_N/report.json]

Without an argument the newest ``runs/demo`` report is used. Writes into ``docs/assets/``:

- ``demo_report.json`` and ``demo_report.md``: copies of the run's report files (the home page
  shows the Markdown);
- ``gamma_heatmap.png``: the learned gamma, layers x positions, on the one gamma colour scale of
  report.html (:func:`rs_metapeft.reporting.figures.gamma_figure`);
- ``tail_report.png``: per-class test accuracy, classes sorted by training count, coloured by
  group, as report.html draws it (:func:`rs_metapeft.reporting.figures.accuracy_by_count_figure`);
- ``bilevel_step.png``: the inner and outer (meta) step as a diagram (no data needed).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from rs_metapeft.reporting.figures import accuracy_by_count_figure, gamma_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "docs" / "assets"


def newest_demo_report() -> Path:
    """Return the newest ``runs/demo/**/report.json``."""
    found = sorted((ROOT / "runs" / "demo").rglob("report.json"),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit("no runs/demo/**/report.json: run `make demo` first, "
                         "or pass a report path")
    return found[-1]


def gamma_heatmap(report: dict, path: Path) -> None:
    """The learned gamma, layers x positions, on the package's one gamma colour scale.

    The same figure as report.html's and the run folder's ``gamma_heatmap.png``
    (:func:`rs_metapeft.reporting.gamma_plots.plot_gamma_heatmap`): diverging, centred at the
    initial value 1, spanning at least x0.5 .. x2.
    """
    if not report.get("gamma"):
        raise SystemExit("the report has no learned gamma (was it a run with PEFT modules?)")
    _save(gamma_figure(report), path)


def tail_report_figure(report: dict, path: Path) -> None:
    """Per-class accuracy bars sorted by training count, coloured by group (as in report.html)."""
    _save(accuracy_by_count_figure(report), path)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _box(ax, xy, text, colour, width=2.9):
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.42), width, 0.84, boxstyle="round,pad=0.05",
                                facecolor=colour, edgecolor="#333333"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start, end, text="", offset=(0, 0.18)):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#333333"))
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text,
                ha="center", va="center", fontsize=7.5, style="italic")


def bilevel_diagram(path: Path) -> None:
    """Draw the inner step (phi) and the outer step (gamma) of MetaPEFT as boxes and arrows."""
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5.2)
    ax.axis("off")
    inner, outer = "#d9f0d3", "#d1e5f0"
    ax.text(0.2, 4.9, "Inner step (every training step): gamma fixed", fontsize=9, weight="bold")
    _box(ax, (1.8, 4.0), "training batch", inner)
    _box(ax, (6.0, 4.0), "L_train(phi, gamma)", inner)
    _box(ax, (10.2, 4.0), "phi <- phi - lr * grad_phi", inner)
    _arrow(ax, (3.25, 4.0), (4.55, 4.0))
    _arrow(ax, (7.45, 4.0), (8.75, 4.0), "optimiser step")
    ax.text(0.2, 2.75, "Outer step (every N steps): only gamma changes",
            fontsize=9, weight="bold")
    _box(ax, (1.8, 1.9), "meta-train batch", outer)
    _box(ax, (6.0, 1.9),
         "look-ahead (functional, phi untouched)\nphi' = phi - lr * grad_phi L_train",
         outer, width=3.6)
    _box(ax, (10.2, 1.9), "L_meta(phi'(gamma), gamma)\non a meta-val batch", outer)
    _box(ax, (6.0, 0.55), "gamma <- gamma - lr_meta * dL_meta/dgamma", outer, width=4.0)
    _arrow(ax, (3.25, 1.9), (4.2, 1.9))
    _arrow(ax, (7.8, 1.9), (8.75, 1.9))
    _arrow(ax, (10.2, 1.48), (7.8, 0.6), "hypergradient\n(first-order or unrolled)", (1.5, -0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Write the figures (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="a run's report.json")
    args = parser.parse_args(argv)
    source = args.report or newest_demo_report()
    report = json.loads(source.read_text())
    ASSETS.mkdir(parents=True, exist_ok=True)
    if source.resolve() != (ASSETS / "demo_report.json").resolve():
        shutil.copyfile(source, ASSETS / "demo_report.json")
        shutil.copyfile(source.with_suffix(".md"), ASSETS / "demo_report.md")
    gamma_heatmap(report, ASSETS / "gamma_heatmap.png")
    tail_report_figure(report, ASSETS / "tail_report.png")
    bilevel_diagram(ASSETS / "bilevel_step.png")
    print(f"figures from {source} written to {ASSETS}")


if __name__ == "__main__":
    main()
