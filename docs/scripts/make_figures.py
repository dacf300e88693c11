"""Draw the documentation's figures from a real run's report.json.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python docs/scripts/make_figures.py [runs/demo/lightning_logs/version_N/report.json]

Without an argument the newest ``runs/demo`` report is used. Writes into ``docs/assets/``:

- ``demo_report.json`` and ``demo_report.md``: copies of the run's report files (the home page
  shows the Markdown);
- ``gamma_heatmap.png``: the learned gamma, layers x positions;
- ``tail_report.png``: per-class test accuracy, classes sorted by training count, coloured by group;
- ``bilevel_step.png``: the inner and outer (meta) step as a diagram (no data needed).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "docs" / "assets"
POSITIONS = ("q", "k", "v", "o", "fc1", "fc2", "adaptformer")
GROUP_COLOURS = {"many": "#1b7837", "medium": "#e08214", "few": "#b2182b"}


def newest_demo_report() -> Path:
    """Return the newest ``runs/demo/**/report.json``."""
    found = sorted((ROOT / "runs" / "demo").rglob("report.json"),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit("no runs/demo/**/report.json: run `make demo` first, "
                         "or pass a report path")
    return found[-1]


def gamma_heatmap(report: dict, path: Path) -> None:
    """Layers x positions heatmap of the learned gamma, values written in the cells."""
    gamma = report.get("gamma") or {}
    if not gamma:
        raise SystemExit("the report has no learned gamma (was it a run with PEFT modules?)")
    layers = sorted(gamma, key=int)
    positions = [p for p in POSITIONS if any(p in gamma[layer] for layer in layers)]
    values = [[gamma[layer].get(p, math.nan) for p in positions] for layer in layers]
    finite = [v for row in values for v in row if not math.isnan(v)]
    spread = max(abs(v - 1.0) for v in finite) or 0.01
    fig, ax = plt.subplots(figsize=(1.1 * len(positions) + 1.8, 0.42 * len(layers) + 1.4))
    image = ax.imshow(values, cmap="RdBu_r", vmin=1 - spread, vmax=1 + spread, aspect="auto")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if not math.isnan(v):
                dark = abs(v - 1.0) > 0.6 * spread  # white text on the saturated cells
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    ax.set_xticks(range(len(positions)), positions)
    ax.set_yticks(range(len(layers)), layers)
    ax.set_xlabel("position")
    ax.set_ylabel("layer")
    steps = (report.get("meta") or {}).get("outer_steps")
    ax.set_title("Learned gamma (starts at 1)" + (f", {steps} outer steps" if steps else ""))
    fig.colorbar(image, ax=ax, label="gamma")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tail_report_figure(report: dict, path: Path) -> None:
    """Per-class accuracy bars sorted by training count, coloured by group, with group means."""
    rows = sorted(report["per_class"], key=lambda r: -r["train_count"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = range(len(rows))
    ax.bar(xs, [100 * r["accuracy"] for r in rows],
           color=[GROUP_COLOURS.get(r["group"], "grey") for r in rows])
    ax.set_xticks(list(xs), [f"{r['class']}\n(n={r['train_count']})" for r in rows],
                  rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("test accuracy %")
    ax.set_ylim(0, 100)
    for group, colour in GROUP_COLOURS.items():
        acc = report["group_accuracy"].get(group)
        label = f"{group}: {100 * acc:.1f}%" if acc is not None else f"{group}: n/a"
        ax.bar([0], [0], color=colour, label=label)
    ax.legend(title="group (mean of class accuracies)", fontsize=7, title_fontsize=7)
    ax.set_title(f"Tail report: overall {100 * report['overall_accuracy']:.1f}%, "
                 f"class-mean {100 * report['class_mean_accuracy']:.1f}%, "
                 f"macro-F1 {100 * report['macro_f1']:.1f}%", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
