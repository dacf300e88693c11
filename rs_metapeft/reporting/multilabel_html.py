"""``report.html`` of a multi-label run: label-tail tables, AP by frequency, co-occurrence, gamma.

Figures are drawn here (matplotlib, Agg) from the report dict; the gamma map, module selection
and training curves are those of single-label reports.
"""

from __future__ import annotations

from html import escape

import matplotlib

matplotlib.use("Agg")  # reports are written on servers and in tests: never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..data.longtail import GROUPS  # noqa: E402
from .figures import GROUP_COLOURS, gamma_figure, training_curves_figure  # noqa: E402
from .html import (  # noqa: E402
    cost_facts,
    figure_html,
    module_selection_html,
    percent,
    report_top,
)
from .multilabel import top_pairs  # noqa: E402

__all__ = ["ap_by_frequency_figure", "co_occurrence_figure", "render_multilabel_html"]


def ap_by_frequency_figure(report: dict) -> Figure | None:
    """Per-label test AP against training count (log scale), points coloured by group."""
    rows = [r for r in report.get("per_class") or [] if r.get("ap") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    counts = np.array([max(r["train_count"], 1) for r in rows], dtype=float)
    ap = np.array([100 * r["ap"] for r in rows])
    ax.scatter(counts, ap, c=[GROUP_COLOURS.get(r["group"], "grey") for r in rows], s=30)
    if len(rows) <= 25:
        for count, value, row in zip(counts, ap, rows, strict=True):
            ax.annotate(row["class"], (count, value), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_ylim(0, 102)
    ax.set_xlabel("training samples carrying the label (log scale)")
    ax.set_ylabel("test AP (%)")
    present = [g for g in GROUP_COLOURS if any(r["group"] == g for r in rows)]
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in present or GROUPS],
              loc="lower right")
    ax.set_title("Average precision by label, against training frequency")
    return fig


def co_occurrence_figure(report: dict) -> Figure | None:
    """Test-split co-occurrence as P(column label | row label), labels by training count."""
    matrix = np.asarray((report.get("co_occurrence") or {}).get("matrix") or [], dtype=float)
    if matrix.size == 0:
        return None
    rows = report["per_class"]
    order = np.argsort([-r["train_count"] for r in rows], kind="stable")
    matrix = matrix[np.ix_(order, order)]
    diagonal = np.diag(matrix)[:, None]
    given = np.divide(matrix, diagonal, out=np.zeros_like(matrix), where=diagonal > 0)
    names = [rows[i]["class"] for i in order]
    side = min(3 + 0.35 * len(names), 14)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(given, cmap="Purples", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("label b")
    ax.set_ylabel("label a (most training samples first)")
    ax.set_title("Label co-occurrence on the test split: P(b | a)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def render_multilabel_html(report: dict, log_rows: list[dict[str, str]] | None = None,
                           title: str = "Label-tail report") -> str:
    """Render a multi-label report as one HTML page with no external files.

    Args:
        report: a multi-label report (see
            :func:`~rs_metapeft.reporting.multilabel.build_multilabel_report`).
        log_rows: rows of the run's CSV log for the training curves (optional).
        title: page title.

    Returns:
        The HTML text.
    """
    columns = [("macro mAP %", report["macro_map"]), ("micro mAP %", report["micro_map"]),
               ("macro-F1 %", report["macro_f1"]), ("micro-F1 %", report["micro_f1"])]
    columns += [(f"{g} mAP %", report["group_map"].get(g)) for g in GROUPS]
    columns += [(f"{g} F1 %", report["group_f1"].get(g)) for g in GROUPS]
    parts = report_top(title, columns, report.get("warnings"))
    facts = [f"{report.get('num_test_images', '?')} test samples, "
             f"{report.get('labels_per_test_image', 0):.2f} labels each",
             f"label groups by training frequency: {escape(report['groups_description'])}",
             f"thresholds chosen {escape(str(report.get('thresholds_source', '?')))}",
             *cost_facts(report)]
    meta = report.get("meta") or {}
    if meta:
        facts.append(f"MetaPEFT on, {meta.get('outer_steps', 0)} outer steps"
                     if meta.get("enabled") else "MetaPEFT off (fixed gamma)")
    parts.append(f"<p class='note'>{'; '.join(facts)}.</p>")
    parts.append(figure_html(training_curves_figure(log_rows or []), "training curves"))
    parts.append("<h2>Labels</h2>")
    parts.append(figure_html(ap_by_frequency_figure(report), "AP by training frequency"))
    parts.append("<table><tr><th>label</th><th>group</th><th>train</th><th>train %</th>"
                 "<th>test</th><th>AP %</th><th>F1 %</th><th>threshold</th></tr>")
    for row in sorted(report["per_class"], key=lambda r: -r["train_count"]):
        colour = GROUP_COLOURS.get(row["group"], "grey")
        parts.append(
            f"<tr><td class='name'>{escape(str(row['class']))}</td><td class='name'>"
            f"<span class='group' style='background:{colour}'>{escape(row['group'])}</span></td>"
            f"<td>{row['train_count']}</td><td>{percent(row.get('train_frequency'))}</td>"
            f"<td>{row['test_count']}</td><td>{percent(row['ap'])}</td><td>{percent(row['f1'])}</td>"
            f"<td>{row['threshold']:.2f}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Label co-occurrence</h2>")
    pairs = top_pairs(report)
    if pairs:
        parts.append("<table class='co-occurrence'><tr><th>label a</th><th>label b</th>"
                     "<th>together</th><th>P(b | a) %</th><th>P(a | b) %</th></tr>"
                     + "".join(f"<tr><td class='name'>{escape(p['a'])}</td><td class='name'>"
                               f"{escape(p['b'])}</td><td>{p['count']}</td>"
                               f"<td>{percent(p['p_b_given_a'])}</td>"
                               f"<td>{percent(p['p_a_given_b'])}</td></tr>" for p in pairs)
                     + "</table>")
    parts.append(figure_html(co_occurrence_figure(report), "label co-occurrence"))
    gamma = gamma_figure(report)
    if gamma is not None:
        parts.append("<h2>Learned gamma</h2>"
                     "<p class='note'>How strongly each PEFT module is used, by layer and "
                     "position.</p>" + figure_html(gamma, "gamma heatmap"))
    parts.append(module_selection_html(report))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
