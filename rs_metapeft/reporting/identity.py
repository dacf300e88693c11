"""What run a report is of: recipe, data, bands, backbone and weights, date, package version.

:func:`run_identity` is written into every report as ``report["run"]``; report.html shows it at
the top and ``rs-metapeft compare`` says when the runs it compares differ in data or bands.
"""

from __future__ import annotations

import datetime
import functools
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._version import __version__

__all__ = ["IDENTITY_FIELDS", "data_label", "package_version", "run_identity"]

#: Fields of ``report["run"]`` as report.html lists them: (key, label).
IDENTITY_FIELDS = (
    ("recipe", "recipe"),
    ("data", "data"),
    ("bands", "bands"),
    ("classes", "classes"),
    ("backbone", "backbone"),
    ("weights", "weights"),
    ("method", "method"),
    ("date", "date"),
    ("version", "rs_metapeft"),
)


@functools.cache
def package_version() -> str:
    """The package version, with the git commit when it runs from a checkout.

    Example:
        >>> package_version().startswith(__version__)
        True
    """
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain",
                                "--untracked-files=no", "rs_metapeft"],
                               capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return __version__  # installed from a wheel, or no git
    sha = commit.stdout.strip()
    return f"{__version__} (commit {sha}{', modified' if dirty.stdout.strip() else ''})"


def _where(path: Any) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _method(hp: Mapping) -> str:
    peft, meta = hp.get("peft") or {}, hp.get("meta") or {}
    method = peft.get("method", "modulated")
    positions = peft.get("positions")
    if method == "modulated":
        where = ", ".join(positions) if positions else "none (linear probe)"
        text = f"PEFT on {where}"
    else:
        text = str(method).replace("_", " ")
    enabled = meta.get("enabled", True)
    return text + ("; MetaPEFT on" if enabled else "; MetaPEFT off (fixed gamma)")


def run_identity(task: Any, datamodule: Any = None, recipe: Any = None) -> dict[str, Any]:
    """The identity of a run, for the top of its report.

    Args:
        task: the :class:`~rs_metapeft.tasks.MetaPEFTTask` (backbone, weights, bands, classes).
        datamodule: its data module (class and folder), when there is one.
        recipe: the recipe file(s) it was run with (the CLI's ``--config``).

    Returns:
        ``recipe``, ``data``, ``bands``, ``classes``, ``backbone``, ``weights``, ``method``,
        ``date`` (local time, ISO 8601) and ``version``; a key is ``None`` when unknown.
    """
    hp = dict(getattr(task, "hparams", {}) or {})
    recipes = recipe if isinstance(recipe, list | tuple) else [recipe] if recipe else []
    recipes = [_where(str(r)) for r in recipes if r]
    data = None
    if datamodule is not None:
        data = type(datamodule).__name__
        root = getattr(datamodule, "root", None)
        if root:
            data += f" at {_where(root)}"
    model = getattr(task, "model", None)
    bands = list(getattr(model, "bands", None) or hp.get("bands") or [])
    backbone = hp.get("backbone")
    if backbone:
        size = [f"{hp['img_size']} px" if hp.get("img_size") else None,
                f"patch {hp['patch_size']}" if hp.get("patch_size") else None,
                f"{hp['stem']} stem" if hp.get("stem") else None]
        backbone = f"{backbone} ({', '.join(s for s in size if s)})"
    return {
        "recipe": ", ".join(recipes) or None,
        "data": data,
        "bands": bands or None,
        "classes": len(getattr(task, "class_names", []) or []) or None,
        "backbone": backbone,
        "weights": hp.get("weights") or "random init" if backbone else None,
        "method": _method(hp) if hp else None,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "version": package_version(),
    }


def data_label(report: Mapping) -> str | None:
    """The data a report's run used, as ``compare`` names it (``None`` for older reports)."""
    run = report.get("run") if isinstance(report.get("run"), Mapping) else {}
    return run.get("data")
