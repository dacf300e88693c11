"""Griffe extension: read ``Example:`` and ``Example (note):`` docstring sections as ``Examples:``.

Griffe's Google parser only knows the plural ``Examples:``; under any other heading a doctest is
rendered as plain Markdown (``>>>`` becomes a quote, ``x["a"]["b"]`` a broken link). The
project's docstrings use the singular, sometimes with a note in brackets; this keeps their
doctests rendered as code without asking every module to change its wording.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^(?P<indent>[ \t]*)Examples?(?:\s*\((?P<note>.+)\))?:[ \t]*$", re.MULTILINE)


def normalise_examples(text: str) -> str:
    """Rewrite example headings in a docstring's text to Google's ``Examples:``."""

    def heading(match: re.Match) -> str:
        indent, note = match.group("indent"), match.group("note")
        if not note:
            return f"{indent}Examples:"
        return f"{indent}Examples:\n{indent}    {note}:"

    return _HEADING.sub(heading, text)


class NormaliseExamples(griffe.Extension):
    """Apply :func:`normalise_examples` to every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = normalise_examples(obj.docstring.value)
