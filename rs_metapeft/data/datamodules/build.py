"""Build a datamodule from a recipe's ``data`` section, exactly as the command line does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonargparse import ArgumentError, ArgumentParser

from .base import LongTailDataModule

__all__ = ["build_datamodule"]


def build_datamodule(data: Mapping[str, Any] | None,
                     source: str = "the recipe") -> LongTailDataModule:
    """Instantiate the datamodule of a recipe's (or a run's ``config.yaml``) ``data`` section.

    jsonargparse checks the class path and every init argument, naming a bad key and the valid
    choices, as ``rs-metapeft fit`` does; ``stats``, ``export --data-config`` and
    :func:`rs_metapeft.api.evaluate` all build their data here.

    Args:
        data: ``{"class_path": ..., "init_args": {...}}``.
        source: where ``data`` comes from, for the message (a recipe path, "the recipe").

    Returns:
        The datamodule (``prepare_data`` and ``setup`` not run yet).

    Raises:
        ValueError: no data section with a class path, or a bad class path or argument.
    """
    if not isinstance(data, Mapping) or "class_path" not in data:
        raise ValueError(
            f"{source} has no data section with a class_path; give a recipe (or the config.yaml "
            "that `rs-metapeft fit` writes into the run folder) with data: {class_path: ..., "
            "init_args: {...}}"
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LongTailDataModule, "data", required=True)
    try:
        config = parser.parse_object({"data": dict(data)})
    except ArgumentError as err:  # a ValueError, so the command line shows it as one line
        raise ValueError(f"{source}: {err}") from err
    return parser.instantiate_classes(config).data
