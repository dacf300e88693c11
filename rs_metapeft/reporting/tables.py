"""Render reports as Markdown and plain-text tables, and write them atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.longtail import GROUPS
from ..io import atomic_write_text
from ..peft.config import POSITIONS
from .identity import IDENTITY_FIELDS
from .selection import (
    ModuleSelection,
    int_keys,
    module_selection,
    scale_text,
    threshold_text,
)

__all__ = [
    "format_console_summary",
    "format_gamma",
    "format_module_selection",
    "format_report",
    "identity_text",
    "run_cost_facts",
    "write_report",
]


def percent_cell(value: float | None) -> str:
    """A fraction as a fixed-width percentage table cell (``n/a`` for ``None``)."""
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def format_report(report: dict) -> str:
    """Render the report as a Markdown document (also readable as plain text).

    A multi-label report (``"task": "multilabel"``) gets the label-tail tables of
    :func:`~rs_metapeft.reporting.multilabel.format_multilabel_report`.
    """
    from .multilabel import format_multilabel_report, is_multilabel

    multilabel = is_multilabel(report)
    lines = ["# Label-tail report" if multilabel else "# Tail-class report", ""]
    identity = identity_text(report)
    if identity:
        lines += [identity, ""]
    for warning in report.get("warnings") or []:  # first: they change what the numbers mean
        lines += [f"> **Warning:** {warning}", ""]
    if multilabel:
        lines += [*format_multilabel_report(report), *run_cost_facts(report)]
    else:
        lines += _single_label_lines(report)
    lines += format_gamma(report)
    selection = module_selection(report)
    if selection is not None:
        lines += ["", *format_module_selection(selection)]
    return "\n".join(lines) + "\n"


def _single_label_lines(report: dict) -> list[str]:
    lines = []
    lines.append("| overall acc | class-mean acc | macro-F1 | " + " | ".join(
        f"{g} acc" for g in GROUPS) + " |")
    lines.append("|---:|---:|---:|" + "---:|" * len(GROUPS))
    ga = report["group_accuracy"]
    cells = [report["overall_accuracy"], report["class_mean_accuracy"], report["macro_f1"],
             *(ga[g] for g in GROUPS)]
    lines.append("| " + " | ".join(percent_cell(c) for c in cells) + " |")
    groups = report.get("groups_description") or f"{report['groups_rule']} rule"
    lines += ["", f"Groups by training count: {groups}.", *run_cost_facts(report), ""]
    lines.append("| class | group | train | test | acc % | F1 % |")
    lines.append("|:--|:--|--:|--:|--:|--:|")
    for row in sorted(report["per_class"], key=lambda r: -r["train_count"]):
        lines.append(
            f"| {row['class']} | {row['group']} | {row['train_count']} | {row['test_count']} | "
            f"{percent_cell(row['accuracy'])} | {percent_cell(row['f1'])} |"
        )
    return lines


def run_cost_facts(report: dict, parameters: str = "Trainable parameters: {:,}.",
                   wall_time: str = "Fit wall time: {:.1f} s.") -> list[str]:
    """What the run cost, where the report records it: trainable parameters and fit time.

    Args:
        report: a report dict.
        parameters: ``str.format`` pattern of the trainable parameter count.
        wall_time: ``str.format`` pattern of the fit's wall time in seconds.
    """
    values = (report.get("trainable_parameters"), report.get("fit_wall_time_s"))
    return [pattern.format(value) for pattern, value in zip((parameters, wall_time), values,
                                                             strict=True) if value is not None]


def format_gamma(report: dict) -> list[str]:
    """Markdown lines of the learned gamma table (layer x position); none without gamma."""
    lines: list[str] = []
    gamma = report.get("gamma")
    if gamma:
        positions = [p for p in POSITIONS if any(p in row for row in gamma.values())]
        lines += ["", "## Learned gamma (layer x position)", ""]
        lines.append("| layer | " + " | ".join(positions) + " |")
        lines.append("|--:|" + "--:|" * len(positions))
        for layer, row in sorted(gamma.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {layer} | " + " | ".join(
                f"{row[p]:.3f}" if p in row else "" for p in positions) + " |")
    return lines



def identity_text(report: dict) -> str | None:
    """The run's identity (``report["run"]``) as one Markdown line; ``None`` when unknown."""
    run = report.get("run")
    if not isinstance(run, dict):
        return None
    parts = []
    for key, label in IDENTITY_FIELDS:
        value = run.get(key)
        if value in (None, "", []):
            continue
        if key == "bands":
            value = f"{len(value)} ({', '.join(value)})"
        parts.append(f"{label} {value}")
    return ("Run: " + "; ".join(parts) + ".") if parts else None


def format_console_summary(report: dict, folder: str | os.PathLike | None = None) -> str:
    """What a run prints when its report is written: the headline numbers and where the rest is.

    The warnings first (they change what the numbers mean), then the test accuracies, the
    groups, what MetaPEFT did to gamma and the files that hold the per-class rows, gamma maps
    and curves.
    """
    from .multilabel import is_multilabel

    lines = [f"Warning: {w}" for w in report.get("warnings") or []]
    multilabel = is_multilabel(report)
    n_images, n_classes = report.get("num_test_images"), len(report.get("per_class") or [])
    what = ", ".join(f"{n} {unit}" for n, unit in (
        (n_images, "images"), (n_classes, "labels" if multilabel else "classes")) if n)
    groups = report.get("groups_description") or f"{report['groups_rule']} rule"
    if multilabel:  # scores per label, not one accuracy
        lines.append(f"Test{f' ({what})' if what else ''}: macro mAP "
                     f"{_percent(report['macro_map'])}, micro mAP "
                     f"{_percent(report['micro_map'])}, macro-F1 "
                     f"{_percent(report['macro_f1'])}, micro-F1 {_percent(report['micro_f1'])}")
        by_group = ", ".join(f"{g} {_percent(report['group_map'].get(g))}" for g in GROUPS)
        lines.append(f"  mAP by label group: {by_group}  ({groups})")
    else:
        lines.append(f"Test{f' ({what})' if what else ''}: overall "
                     f"{_percent(report['overall_accuracy'])}, class-mean "
                     f"{_percent(report['class_mean_accuracy'])}, macro-F1 "
                     f"{_percent(report['macro_f1'])}")
        ga = report["group_accuracy"]
        by_group = ", ".join(f"{g} {_percent(ga[g])}" for g in GROUPS)
        lines.append(f"  by group: {by_group}  ({groups})")
    selection = module_selection(report)
    gamma = [v for row in int_keys(report.get("gamma")).values() for v in row.values()]
    off = ""
    if selection is not None and selection.scales:
        limit = threshold_text(selection.threshold)
        off = (f"; {len(selection.off)} of {selection.num_modules} modules switched off "
               f"(effective scale below {limit} of its initial value)" if selection.off
               else f"; none of {selection.num_modules} modules switched off (effective scale "
                    f"below {limit} of its initial value)")
    meta = report.get("meta") if isinstance(report.get("meta"), dict) else {}
    if meta.get("enabled") is False:
        lines.append(f"  gamma: MetaPEFT off, every module kept gamma = 1{off}")
    elif gamma and meta.get("outer_steps") == 0:
        lines.append("  gamma: no outer step ran, every module kept gamma = 1")
    elif gamma:
        steps = meta.get("outer_steps")
        when = f" after {steps} outer step{'s' * (steps != 1)}" if steps else ""
        lines.append(f"  gamma{when}: {min(gamma):.3f} to {max(gamma):.3f} (starts at 1){off}")
    extra = []
    if report.get("trainable_parameters") is not None:
        extra.append(f"trainable parameters {report['trainable_parameters']:,}")
    if report.get("fit_wall_time_s") is not None:
        extra.append(f"fit {report['fit_wall_time_s']:.1f} s")
    if extra:
        lines.append("  " + "; ".join(extra))
    if folder is not None:
        where = Path(folder)
        lines.append(f"Report: {where / 'report.html'} (per-class rows, gamma, curves; also "
                     "report.md and report.json)")
    return "\n".join(lines)


def format_module_selection(selection: ModuleSelection) -> list[str]:
    """Markdown lines of the "Module selection" section (switched-off modules, effective scales).

    Args:
        selection: :func:`rs_metapeft.reporting.selection.module_selection` of a report.

    """
    limit = threshold_text(selection.threshold)
    lines = ["## Module selection", "",
             "Each PEFT module acts with the effective scale alpha * gamma and starts at "
             f"gamma = 1; it counts as switched off below {limit} of its initial scale."]
    if selection.meta_enabled is False:
        lines.append("MetaPEFT was off: gamma kept its initial value.")
    lines.append("")
    if selection.off:
        lines.append(f"Switched off ({len(selection.off)} of {selection.num_modules or '?'} "
                     f"modules below {limit} of their initial scale):")
        lines += ["", "| layer | position | effective scale | initial scale |",
                  "|--:|:--|--:|--:|"]
        lines += [f"| {m['layer']} | {m['position']} | {scale_text(m['scale'])} | "
                  f"{scale_text(m['initial'])} |" for m in selection.off]
    else:
        lines.append(f"Switched off: none below {limit} of their initial scale.")
    if selection.scales:
        positions = selection.positions
        start = selection.uniform_initial()
        lines.append("")
        if start is not None:
            lines.append(f"Effective scale alpha * gamma (layer x position); initial scale "
                         f"{scale_text(start)} for every module. \"off\": switched off.")
        else:
            lines.append("Effective scale alpha * gamma (layer x position), initial scale in "
                         "brackets. \"off\": switched off.")
        lines += ["", "| layer | " + " | ".join(positions) + " |",
                  "|--:|" + "--:|" * len(positions)]
        for layer, grid_cells in selection.grid():
            cells = ["" if c is None else c[0] + (" off" if c[1] else "") for c in grid_cells]
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    if selection.history:
        first, last = selection.history[0][0], selection.history[-1][0]
        n = len(selection.history)
        when = f"step {first}" if n == 1 else f"steps {first} to {last}"
        lines += ["", f"Gamma was recorded after {n} outer step{'s' * (n != 1)} ({when}); "
                  "report.html and gamma_history.png plot it."]
    return lines


def write_report(report: dict, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``folder`` (atomically).

    The HTML page draws training curves from ``folder/metrics.csv`` (the CSV log) when present.

    Returns:
        The JSON and Markdown paths (``report.html`` lies beside them).

    """
    from .figures import read_csv_log  # matplotlib: imported only when a report is written
    from .html import render_html
    from .multilabel import is_multilabel
    from .multilabel_html import render_multilabel_html

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    atomic_write_text(json_path, json.dumps(report, indent=2))
    atomic_write_text(md_path, format_report(report))
    render = render_multilabel_html if is_multilabel(report) else render_html
    atomic_write_text(folder / "report.html", render(report, read_csv_log(folder / "metrics.csv")))
    return json_path, md_path
