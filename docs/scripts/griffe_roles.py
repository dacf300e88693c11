"""Griffe extension: render the docstrings' Sphinx roles as cross-references.

The docstrings are Google style but name other objects with Sphinx roles (``:func:`fit```,
``:class:`~rs_metapeft.tasks.MetaPEFTTask```), which mkdocstrings shows as raw text
(":func:fit"). Once the package is loaded, every role is rewritten:

- a target found in the package becomes an optional autorefs cross-reference (a link where the
  target has a page, plain code where it has none, never a build error): the name is resolved
  as written, then relative to the docstring's class and module, then (a leading ``.``, or a
  bare name) as the one object of the package whose path ends with it;
- any other target (``torch.nn.Module``, ``torchgeo.datasets.EuroSAT``) becomes inline code.

``~`` shows only the last part of the name, as in Sphinx. Code in the docstrings' examples is
left alone.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

#: A Sphinx role as the docstrings write them: ``:func:`name```, ``:class:`~a.b.C```.
ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|mod|attr|data|obj|exc|const):"
                  r"`(?P<target>[^`]+)`")
_FENCE = re.compile(r"^\s*(```|>>>|\.\.\.)")


def _objects(module: griffe.Module) -> dict[str, griffe.Object | griffe.Alias]:
    """Every object of a loaded package by its path (aliases under theirs too)."""
    found: dict[str, Any] = {}
    stack: list[Any] = [module]
    while stack:
        obj = stack.pop()
        if obj.path in found:
            continue
        found[obj.path] = obj
        try:
            members = obj.members.values()
        except Exception:  # an alias to something outside the package
            continue
        stack.extend(members)
    return found


def resolve(target: str, where: str, paths: set[str],
            aliases: dict[str, str] | None = None) -> str | None:
    """The full path of ``target`` named in the docstring of the object at ``where``.

    A re-export (a path in ``aliases``) resolves to where its object is defined, the path
    mkdocstrings registers wherever the object is rendered.

    Example:
        >>> paths = {"pkg.api", "pkg.api.fit", "pkg.tasks.Task", "pkg.tasks.Task.setup"}
        >>> resolve("fit", "pkg.api.load", paths), resolve(".Task", "pkg.api", paths)
        ('pkg.api.fit', 'pkg.tasks.Task')
        >>> resolve("setup", "pkg.tasks.Task.fit", paths), resolve("torch.nn", "pkg.api", paths)
        ('pkg.tasks.Task.setup', None)
    """
    aliases = aliases or {}
    name = target.lstrip(".")
    if not target.startswith(".") and name in paths:
        return aliases.get(name, name)
    parts = where.split(".")
    for depth in range(len(parts), 0, -1):  # the object, its class, its module, its package
        candidate = ".".join(parts[:depth] + [name])
        if candidate in paths:
            return aliases.get(candidate, candidate)
    ending = {aliases.get(p, p) for p in paths if p.endswith("." + name)}
    return ending.pop() if len(ending) == 1 else None


def rewrite(text: str, where: str, paths: set[str], aliases: dict[str, str] | None = None) -> str:
    """The docstring ``text`` with its roles as cross-references or code (see the module)."""

    def role(match: re.Match) -> str:
        target = match.group("target").strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        if match.group("role") in ("func", "meth") and target.endswith("()"):
            target = target[:-2]
        shown = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        found = resolve(target, where, paths, aliases)
        if found is None:
            return f"`{shown}`"
        return (f'<autoref identifier="{html.escape(found)}" optional>'
                f"<code>{html.escape(shown)}</code></autoref>")

    lines, in_code = [], False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        lines.append(line if in_code or _FENCE.match(line) else ROLE.sub(role, line))
    return "".join(lines)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of a loaded package (see the module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: D102
        objects = _objects(pkg)
        paths = set(objects)
        aliases = {p: obj.target_path for p, obj in objects.items()
                   if isinstance(obj, griffe.Alias) and obj.target_path in objects}
        for path, obj in objects.items():
            if path in aliases or isinstance(obj, griffe.Alias):
                continue
            docstring = obj.docstring
            if docstring is not None and ROLE.search(docstring.value):
                docstring.value = rewrite(docstring.value, path, paths, aliases)
