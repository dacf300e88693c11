"""Side-by-side comparison of runs: accuracy by group, parameters, wall time, modules off."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..data.longtail import GROUPS
from ..io import atomic_write_text
from .identity import data_label
from .multilabel import MULTILABEL_COLUMNS, comparison_row, is_multilabel
from .runs import find_report, load_report

#: What else the CSV holds per run (the Markdown names differences under the table instead).
EXTRA_CSV_COLUMNS = ("data", "bands", "classes")

__all__ = ["COLUMNS", "compare_runs", "comparison_notes", "format_comparison",
           "write_comparison"]

#: Columns of the comparison: (key, header).
COLUMNS = (
    ("run", "run"),
    ("meta", "MetaPEFT"),
    ("overall", "overall %"),
    ("class_mean", "class-mean %"),
    ("macro_f1", "macro-F1 %"),
    *((g, f"{g} %") for g in GROUPS),
    ("trainable_parameters", "trainable params"),
    ("fit_wall_time_s", "fit wall time s"),
    ("switched_off", "modules off"),
)


def _label(path: Path, all_paths: list[Path]) -> str:
    """Shortest trailing part of the run folder that tells the runs apart."""
    folder = path.parent
    for depth in range(1, len(folder.parts) + 1):
        label = "/".join(folder.parts[-depth:])
        others = ["/".join(p.parent.parts[-depth:]) for p in all_paths if p != path]
        if label not in others:
            return label
    return str(folder)


def compare_runs(runs: list[str | os.PathLike]) -> list[dict]:
    """One row per run: overall, class-mean, group accuracy, parameters, wall time, modules off.

    ``switched_off`` counts the modules MetaPEFT switched off (``None`` when the report does not
    say, e.g. a linear probe or a report written before module selection was reported).

    Args:
        runs: run folders or report.json files.

    Returns:
        Rows keyed by :data:`COLUMNS` (accuracies as fractions, ``None`` where unknown); for
        multi-label runs by :data:`~rs_metapeft.reporting.multilabel.MULTILABEL_COLUMNS`.

    Raises:
        ValueError: single-label and multi-label runs mixed.

    """
    paths = [find_report(r) for r in runs]
    reports = [load_report(path) for path in paths]
    kinds = {is_multilabel(r) for r in reports}
    if len(kinds) > 1:  # accuracy and mAP in one column would mislead
        multi = [str(p.parent) for p, r in zip(paths, reports, strict=True) if is_multilabel(r)]
        raise ValueError(
            f"{', '.join(multi)}: multi-label runs cannot be compared with single-label ones "
            "(mAP against accuracy); compare each kind on its own"
        )
    if kinds == {True}:  # multi-label: mAP and F1 columns (MULTILABEL_COLUMNS)
        return [{"run": _label(p, paths), **comparison_row(r)}
                for p, r in zip(paths, reports, strict=True)]
    rows = []
    for path, report in zip(paths, reports, strict=True):
        ga = report["group_accuracy"]
        rows.append({
            "run": _label(path, paths),
            "overall": report["overall_accuracy"],
            "class_mean": report["class_mean_accuracy"],
            "macro_f1": report["macro_f1"],
            **{g: ga.get(g) for g in GROUPS},
            "trainable_parameters": report.get("trainable_parameters"),
            "fit_wall_time_s": report.get("fit_wall_time_s"),
            "switched_off": (len(report["switched_off"])
                             if isinstance(report.get("switched_off"), list) else None),
            "meta": _meta(report),
            "data": data_label(report),
            "bands": _bands(report),
            "classes": " ".join(str(r.get("class")) for r in report.get("per_class") or []),
        })
    return rows


def _meta(report: dict) -> str | None:
    meta = report.get("meta")
    if not isinstance(meta, dict) or "enabled" not in meta:
        return None
    return "on" if meta["enabled"] else "off"


def _bands(report: dict) -> str | None:
    run = report.get("run") if isinstance(report.get("run"), dict) else {}
    return " ".join(run["bands"]) if run.get("bands") else None


def comparison_notes(rows: list[dict]) -> list[str]:
    """Sentences naming what differs between the compared runs besides the method.

    Runs on other data, bands or classes are not like for like: their accuracies measure other
    tasks. Reports written before runs recorded their data say nothing here.

    Example:
        >>> comparison_notes([{"run": "a", "data": "X at d1", "bands": "B02 B03", "classes": ""},
        ...                   {"run": "b", "data": "X at d2", "bands": "B02 B03", "classes": ""}])
        ['These runs used different data: a: X at d1; b: X at d2.']
    """
    notes = []
    for key in ("data", "bands"):
        values = [(row["run"], row.get(key)) for row in rows if row.get(key)]
        if len({v for _, v in values}) > 1:
            listed = "; ".join(f"{run}: {value}" for run, value in values)
            notes.append(f"These runs used different {key}: {listed}.")
    classes = [(row["run"], row["classes"].split()) for row in rows if row.get("classes")]
    if len({tuple(c) for _, c in classes}) > 1:
        common = set.intersection(*(set(c) for _, c in classes))
        listed = "; ".join(f"{run}: {len(c)} ({len(set(c) - common)} not in every run)"
                           for run, c in classes)
        notes.append(f"These runs have different classes: {listed}.")
    return notes


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key in ("run", "meta"):
        return str(value)
    if key == "switched_off":
        return str(int(value))
    if key == "trainable_parameters":
        return f"{int(value):,}"
    if key == "fit_wall_time_s":
        return f"{value:.1f}"
    return f"{100 * value:.1f}"


def _columns(rows: list[dict]) -> tuple[tuple[str, str], ...]:
    """The columns of these rows: :data:`COLUMNS`, or multi-label runs' own."""
    return MULTILABEL_COLUMNS if rows and "macro_map" in rows[0] else COLUMNS


def format_comparison(rows: list[dict]) -> str:
    """Format the comparison as a Markdown table."""
    columns = _columns(rows)
    lines = ["| " + " | ".join(h for _, h in columns) + " |",
             "|:--|" + "--:|" * (len(columns) - 1)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(k, row.get(k)) for k, _ in columns) + " |")
    notes = comparison_notes(rows)
    if notes:
        lines += [""] + [f"> **Note:** {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_comparison(rows: list[dict], output: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUTPUT.md`` and ``OUTPUT.csv`` (raw values) atomically.

    Returns:
        The two paths.

    """
    base = Path(output)
    base = base.with_suffix("") if base.suffix in (".md", ".csv") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path = base.with_name(base.name + ".md"), base.with_name(base.name + ".csv")
    atomic_write_text(md, format_comparison(rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[k for k, _ in _columns(rows)]
                            + list(EXTRA_CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(csv_path, buffer.getvalue())
    return md, csv_path
