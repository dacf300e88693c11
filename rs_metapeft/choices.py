"""Settings with a fixed set of values are ``Literal`` types, and one check for Python callers.

A ``Literal`` in a signature or a settings dataclass is what the command line reads: LightningCLI
(jsonargparse) lists its values in ``--help`` and refuses any other before anything is built, as
TorchGeo's trainers do. Python callers (the API, notebooks, tests) bypass the parser, so the few
places that take such a value from them check it with :func:`check_choice`, against the same
``Literal``.
"""

from __future__ import annotations

from typing import Any, get_args

__all__ = ["check_choice"]

def check_choice[T](value: T, kind: Any, name: str) -> T:
    """Return ``value`` if it is one of the ``Literal`` ``kind``'s values.

    Args:
        value: the value given.
        kind: a ``Literal[...]`` type.
        name: the setting, for the message (``"model.optimizer.name"``).

    Returns:
        ``value``.

    Raises:
        ValueError: another value; the message names the setting and lists the valid values.
    """
    allowed = get_args(kind)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value
