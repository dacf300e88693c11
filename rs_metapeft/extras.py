"""Optional dependencies: the extra that installs each, and one clear error when it is missing."""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtraError", "require_extra"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require_extra(module: str, extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` when ``module`` cannot be imported.

    Args:
        module: the importable name of the dependency (e.g. ``pyarrow``).
        extra: the ``rs_metapeft`` extra that installs it (e.g. ``bigearthnet``).
        what: what needs it, for the message (e.g. ``BigEarthNetV2's metadata.parquet``).

    Raises:
        MissingExtraError: ``module`` is not installed.
    """
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed: pip install "
            f"'rs_metapeft[{extra}]' (or pip install {module})"
        )
