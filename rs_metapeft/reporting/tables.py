"""Render reports as Markdown and plain-text tables, and write them atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.longtail import GROUPS
from ..peft.config import POSITIONS

__all__ = ["atomic_write", "format_report", "write_report"]


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def format_report(report: dict) -> str:
    """Render the report as a Markdown document (also readable as plain text)."""
    lines = ["# Tail-class report", ""]
    lines.append("| overall acc | class-mean acc | macro-F1 | " + " | ".join(
        f"{g} acc" for g in GROUPS) + " |")
    lines.append("|---:|---:|---:|" + "---:|" * len(GROUPS))
    ga = report["group_accuracy"]
    lines.append(
        f"| {_pct(report['overall_accuracy'])} | {_pct(report['class_mean_accuracy'])} | "
        f"{_pct(report['macro_f1'])} | " + " | ".join(_pct(ga[g]) for g in GROUPS) + " |"
    )
    lines += ["", f"Groups by training count ({report['groups_rule']} rule)."]
    if report.get("trainable_parameters") is not None:
        lines.append(f"Trainable parameters: {report['trainable_parameters']:,}.")
    if report.get("fit_wall_time_s") is not None:
        lines.append(f"Fit wall time: {report['fit_wall_time_s']:.1f} s.")
    lines.append("")
    lines.append("| class | group | train | test | acc % | F1 % |")
    lines.append("|:--|:--|--:|--:|--:|--:|")
    for row in sorted(report["per_class"], key=lambda r: -r["train_count"]):
        lines.append(
            f"| {row['class']} | {row['group']} | {row['train_count']} | {row['test_count']} | "
            f"{_pct(row['accuracy'])} | {_pct(row['f1'])} |"
        )
    gamma = report.get("gamma")
    if gamma:
        positions = [p for p in POSITIONS if any(p in row for row in gamma.values())]
        lines += ["", "## Learned gamma (layer x position)", ""]
        lines.append("| layer | " + " | ".join(positions) + " |")
        lines.append("|--:|" + "--:|" * len(positions))
        for layer, row in sorted(gamma.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {layer} | " + " | ".join(
                f"{row[p]:.3f}" if p in row else "" for p in positions) + " |")
    return "\n".join(lines) + "\n"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(report: dict, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``folder`` (atomically).

    The HTML page draws training curves from ``folder/metrics.csv`` (the CSV log) when present.

    Returns:
        The JSON and Markdown paths (``report.html`` lies beside them).

    """
    from .figures import read_csv_log  # matplotlib: imported only when a report is written
    from .html import render_html

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    atomic_write(json_path, json.dumps(report, indent=2))
    atomic_write(md_path, format_report(report))
    atomic_write(folder / "report.html",
                  render_html(report, read_csv_log(folder / "metrics.csv")))
    return json_path, md_path
