"""A self-contained ``report.html``: tables plus figures embedded as base64 PNG."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from ..data.longtail import GROUPS
from .figures import (
    GROUP_COLOURS,
    accuracy_by_count_figure,
    confusion_figure,
    curves_note,
    figure_png,
    gamma_figure,
    gamma_history_figure,
    training_curves_figure,
)
from .identity import IDENTITY_FIELDS
from .selection import module_selection, scale_text, threshold_text
from .tables import run_cost_facts

__all__ = ["cost_facts", "figure_html", "module_selection_html", "percent", "render_html",
           "report_top"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.name { text-align: left; }
.group { color: white; border-radius: 3px; padding: 1px 6px; }
img { max-width: 100%; display: block; margin: 1em 0; }
.note { color: #666; font-size: 90%; }
.warning { background: #fff3cd; border-left: 4px solid #d62728; padding: 4px 8px; }
td.off { background: #eee; font-weight: bold; }
table.run { margin: 0.5em 0 1.5em; font-size: 90%; }
table.run th { text-align: left; font-weight: normal; color: #555; background: none; }
table.run th, table.run td { border: none; border-bottom: 1px solid #eee; padding: 2px 12px 2px 0; }
"""


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``n/a`` for ``None``)."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def figure_html(fig, alt: str) -> str:
    """A figure as an embedded PNG ``<img>`` (nothing for ``None``)."""
    if fig is None:
        return ""
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def report_top(title: str, columns: Sequence[tuple[str, float | None]],
               warnings: Sequence[str] | None = None, intro: str = "") -> list[str]:
    """The top of a report page, in parts: head and title, ``intro``, headline, warnings.

    Args:
        title: page title (also the ``<h1>``).
        columns: the headline table's ``(name, fraction)`` columns, shown as percentages.
        warnings: the report's warnings, one highlighted paragraph each.
        intro: HTML between the title and the headline (e.g. the run's identity).
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>", intro]
    parts.append("<table><tr>" + "".join(f"<th>{name}</th>" for name, _ in columns)
                 + "</tr><tr>" + "".join(f"<td>{percent(v)}</td>" for _, v in columns)
                 + "</tr></table>")
    parts += [f"<p class='warning'><b>Warning:</b> {escape(w)}</p>" for w in warnings or []]
    return parts


def cost_facts(report: dict) -> list[str]:
    """What the run cost, for a report page's facts line: trainable parameters and fit time."""
    return run_cost_facts(report, "{:,} trainable parameters", "fit took {:.1f} s")


def module_selection_html(report: dict) -> str:
    """The "Module selection" section: switched-off modules, effective scales, gamma history."""
    selection = module_selection(report)
    if selection is None:
        return ""
    limit = threshold_text(selection.threshold)
    parts = ["<h2>Module selection</h2>",
             "<p class='note'>Each PEFT module acts with the effective scale alpha &middot; gamma "
             f"and starts at gamma = 1; it counts as switched off below {limit} of its initial "
             "scale."
             + (" MetaPEFT was off: gamma kept its initial value." if selection.meta_enabled
                is False else "") + "</p>"]
    if selection.off:
        parts.append(f"<p>Switched off: {len(selection.off)} of {selection.num_modules or '?'} "
                     f"modules below {limit} of their initial scale.</p>")
        parts.append("<table class='switched-off'><tr><th>layer</th><th>position</th>"
                     "<th>effective scale</th><th>initial scale</th></tr>"
                     + "".join(f"<tr><td>{m['layer']}</td><td class='name'>"
                               f"{escape(m['position'])}</td><td>{scale_text(m['scale'])}</td>"
                               f"<td>{scale_text(m['initial'])}</td></tr>" for m in selection.off)
                     + "</table>")
    else:
        parts.append(f"<p>Switched off: none below {limit} of their initial scale.</p>")
    if selection.scales:
        positions = selection.positions
        start = selection.uniform_initial()
        parts.append("<p class='note'>Effective scale alpha &middot; gamma by layer and position; "
                     + (f"initial scale {scale_text(start)} for every module."
                        if start is not None else "initial scale in brackets.")
                     + " Shaded cells marked off are switched off.</p>")
        rows = ["<table class='effective-scale'><tr><th>layer</th>"
                + "".join(f"<th>{escape(p)}</th>" for p in positions) + "</tr>"]
        for layer, grid_cells in selection.grid():
            cells = ["<td></td>" if c is None else
                     f"<td class='off'>{c[0]} off</td>" if c[1] else f"<td>{c[0]}</td>"
                     for c in grid_cells]
            rows.append(f"<tr><td>{layer}</td>" + "".join(cells) + "</tr>")
        parts.append("".join(rows) + "</table>")
        parts.append("<p class='note'>Its colours are those of the gamma heatmap above: the "
                     "effective scale over the initial scale is gamma.</p>")
    return "\n".join(p for p in parts if p)


def _identity_html(report: dict) -> str:
    """The run's identity (recipe, data, bands, backbone, weights, date, version) as a table."""
    run = report.get("run")
    if not isinstance(run, dict):
        return ""
    rows = []
    for key, label in IDENTITY_FIELDS:
        value = run.get(key)
        if value in (None, "", []):
            continue
        if key == "bands":
            value = f"{len(value)}: {', '.join(value)}"
        rows.append(f"<tr><th>{escape(label)}</th><td class='name'>{escape(str(value))}</td></tr>")
    return "<table class='run'>" + "".join(rows) + "</table>" if rows else ""


def _gamma_html(report: dict) -> str:
    """The learned gamma: its heatmap, then gamma after each outer step."""
    gamma, history = gamma_figure(report), gamma_history_figure(report)
    if gamma is None and history is None:
        return ""
    parts = ["<h2>Learned gamma</h2>"]
    if gamma is not None:
        parts += ["<p class='note'>How strongly each PEFT module is used, by layer and "
                  "position. Every module starts at gamma = 1 (white); red is stronger, blue "
                  "weaker, on a log scale that spans at least &times;0.5 to &times;2, so a "
                  "change of a few per cent stays pale.</p>", figure_html(gamma, "gamma heatmap")]
    if history is not None:
        n = len(module_selection(report).history)
        parts.append(f"<p class='note'>Gamma after each outer step ({n} in all).</p>"
                     + figure_html(history, "gamma over training"))
    return "\n".join(parts)


def render_html(report: dict, log_rows: list[dict[str, str]] | None = None,
                title: str = "Tail-class report") -> str:
    """Render the report as one HTML page with no external files.

    Args:
        report: a report dict (see :func:`rs_metapeft.reporting.build_report`).
        log_rows: rows of the run's CSV log for the training curves (optional).
        title: page title.

    Returns:
        The HTML text.

    """
    ga = report["group_accuracy"]
    columns = [("overall acc %", report["overall_accuracy"]),
               ("class-mean acc %", report["class_mean_accuracy"]),
               ("macro-F1 %", report["macro_f1"])]
    columns += [(f"{g} acc %", ga.get(g)) for g in GROUPS]
    parts = report_top(title, columns, report.get("warnings"), _identity_html(report))
    groups = report.get("groups_description") or f"{report.get('groups_rule', '?')} rule"
    facts = [f"{report.get('num_test_images', '?')} test images",
             f"groups by training count: {escape(groups)}", *cost_facts(report)]
    meta = report.get("meta") or {}
    if meta:
        facts.append("MetaPEFT on" if meta.get("enabled") else "MetaPEFT off (fixed gamma)")
        if meta.get("enabled"):
            facts.append(f"{meta.get('outer_steps', 0)} outer steps "
                         f"({meta.get('skipped_outer_steps', 0)} skipped)")
    parts.append(f"<p class='note'>{'; '.join(facts)}.</p>")
    parts.append(figure_html(training_curves_figure(log_rows or []), "training curves"))
    note = curves_note(log_rows or [], report.get("training"))
    if note:
        parts.append(f"<p class='note'>{escape(note)}</p>")
    parts.append("<h2>Classes</h2>")
    parts.append(figure_html(accuracy_by_count_figure(report),
                             "per-class accuracy by training count"))
    rows = sorted(report["per_class"], key=lambda r: -r["train_count"])
    parts.append("<table><tr><th>class</th><th>group</th><th>train</th><th>test</th>"
                 "<th>accuracy %</th><th>F1 %</th></tr>")
    for row in rows:
        colour = GROUP_COLOURS.get(row["group"], "grey")
        parts.append(
            f"<tr><td class='name'>{escape(str(row['class']))}</td><td class='name'>"
            f"<span class='group' style='background:{colour}'>{escape(row['group'])}</span></td>"
            f"<td>{row['train_count']}</td><td>{row.get('test_count', '')}</td>"
            f"<td>{percent(row['accuracy'])}</td><td>{percent(row['f1'])}</td></tr>"
        )
    parts.append("</table>")
    parts.append(figure_html(confusion_figure(report), "confusion matrix"))
    parts.append(_gamma_html(report))
    parts.append(module_selection_html(report))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
