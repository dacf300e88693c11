"""Read tutorial pages: their front matter and their ``python`` code blocks, in order.

A tutorial is a Markdown page under ``docs/tutorials/``. Its ```` ```python ```` blocks run in order
in one namespace, in a fresh folder, with ``RS_METAPEFT_TUTORIAL_QUICK=1`` (pages use it to
shrink sizes). Requirements name code that may not be in this build yet, as
``"module:attribute": issue-number``:

- in the front matter (``tutorial: {requires: {...}}``): the whole page needs them;
- in a comment before a block (``<!-- requires: module:attribute=N, ... -->``): that block and
  every later one need them; the blocks before it still run.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIALS = DOCS / "tutorials"
QUICK_ENV = "RS_METAPEFT_TUTORIAL_QUICK"

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_REQUIRES = re.compile(r"<!--\s*requires:\s*(.*?)\s*-->")
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass
class Block:
    """One python block: its code, first line number in the page, and what it needs."""

    code: str
    line: int
    requires: dict[str, int] = field(default_factory=dict)


def _parse_requires(text: str) -> dict[str, int]:
    found = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, issue = item.partition("=")
        found[name.strip()] = int(issue)
    return found


def read_tutorial(path: Path) -> tuple[dict, list[Block]]:
    """The page's front matter and its python blocks with their cumulative requirements."""
    text = path.read_text()
    match = _FRONT.match(text)
    meta = (yaml.safe_load(match.group(1)) or {}) if match else {}
    page_requires = dict((meta.get("tutorial") or {}).get("requires") or {})
    events = [(m.start(), "requires", _parse_requires(m.group(1)))
              for m in _REQUIRES.finditer(text)]
    events += [(m.start(1), "code", m.group(1)) for m in _FENCE.finditer(text)]
    blocks, needed = [], dict(page_requires)
    for pos, kind, value in sorted(events, key=lambda e: e[0]):
        if kind == "requires":
            needed = {**needed, **value}
        else:
            blocks.append(Block(value, text.count("\n", 0, pos) + 1, dict(needed)))
    return meta, blocks


def missing(requires: dict[str, int]) -> list[tuple[str, int]]:
    """The ``module:attribute`` requirements that do not import, with their issue numbers."""
    absent = []
    for name, issue in requires.items():
        module, _, attr = name.partition(":")
        try:
            obj = importlib.import_module(module)
            if attr:
                getattr(obj, attr)
        except (ImportError, AttributeError):
            absent.append((name, issue))
    return absent


def tutorial_pages() -> list[Path]:
    """Every tutorial page."""
    return sorted(TUTORIALS.glob("*.md"))
