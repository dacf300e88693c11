"""Find and reload the report of a run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .tables import write_report

__all__ = ["find_report", "load_report", "regenerate_report"]

_REQUIRED = ("overall_accuracy", "class_mean_accuracy", "macro_f1", "group_accuracy", "per_class")
_REQUIRED_MULTILABEL = ("macro_map", "micro_map", "macro_f1", "micro_f1", "group_map",
                        "per_class", "co_occurrence")


def find_report(run: str | os.PathLike) -> Path:
    """Find a run's ``report.json``: the file itself, ``RUN/report.json``, or the newest below.

    Raises:
        FileNotFoundError: no report.json there; the message says how one is made.

    """
    path = Path(run)
    if path.is_file():
        return path
    if (path / "report.json").is_file():
        return path / "report.json"
    found = list(path.rglob("report.json")) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"no report.json in {path}: give a run folder written by `rs-metapeft fit` or `test` "
            "(e.g. runs/demo/lightning_logs/version_0)"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def load_report(run: str | os.PathLike) -> dict:
    """Read a run's report dict; a file that is not a report is refused, naming what is missing."""
    path = find_report(run)
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun `rs-metapeft test`") from err
    from .multilabel import is_multilabel

    required = _REQUIRED_MULTILABEL if is_multilabel(report) else _REQUIRED
    missing = [k for k in required if not isinstance(report, dict) or k not in report]
    if missing:
        raise ValueError(f"{path} is not an rs_metapeft report: it lacks {', '.join(missing)}")
    report.setdefault("path", str(path.parent))
    return report


def regenerate_report(run: str | os.PathLike) -> list[Path]:
    """Rewrite report.md and report.html of a run from its report.json (and CSV log).

    Returns:
        The written paths (report.json is rewritten unchanged).

    """
    path = find_report(run)
    report = load_report(path)
    report.pop("path", None)
    json_path, md_path = write_report(report, path.parent)
    return [md_path, path.parent / "report.html"]
