"""MetaPEFT's module selection as a report shows it: effective scales and switched-off modules.

Every PEFT module at (layer, position) acts with the effective scale ``alpha * gamma``; it starts
at gamma = 1 (effective scale = alpha, its *initial* scale). A module whose effective scale fell
below ``threshold`` times its initial scale is *switched off*. The report keys (written by the
MetaPEFT task) are ``effective_scale`` and ``initial_scale`` (``{layer: {position: value}}``),
``switched_off`` (``[{"layer", "position", "scale", "initial"}, ...]``), ``switch_off_threshold``
and ``gamma_history`` (``[[step, {layer: {position: gamma}}], ...]``). Any of them may be missing
or empty (linear probe, MetaPEFT off, reports written before they existed); this module is pure
Python so the Markdown report needs no plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..peft.config import POSITIONS

__all__ = [
    "DEFAULT_THRESHOLD",
    "ModuleSelection",
    "int_keys",
    "is_switched_off",
    "module_selection",
    "ordered_positions",
    "threshold_text",
]

#: Relative threshold used when a report does not say (the task's default ``off_threshold``).
DEFAULT_THRESHOLD = 0.05

ScaleMap = dict[int, dict[str, float]]


def int_keys(mapping: Mapping | None) -> ScaleMap:
    """``{layer: {position: value}}`` with integer layers (JSON gives strings); junk is dropped."""
    out: ScaleMap = {}
    for layer, row in (mapping or {}).items():
        try:
            key = int(layer)
        except (TypeError, ValueError):
            continue
        if isinstance(row, Mapping):
            out[key] = {str(p): float(v) for p, v in row.items() if _is_number(v)}
    return out


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def ordered_positions(*maps: Mapping) -> list[str]:
    """Positions used in any of the maps, in the library's order (unknown ones last, sorted)."""
    used = {p for m in maps for row in m.values() for p in row}
    return [p for p in POSITIONS if p in used] + sorted(used - set(POSITIONS))


def is_switched_off(scale: float, initial: float, threshold: float) -> bool:
    """The rule of :func:`rs_metapeft.peft.modulator.switched_off`: ``|scale| < t * |initial|``."""
    return abs(scale) < threshold * abs(initial)


def scale_text(value: float) -> str:
    """An effective scale as a table cell (three significant digits)."""
    return f"{value:.3g}"


def threshold_text(threshold: float) -> str:
    """``0.05`` -> ``"5 %"``."""
    return f"{100 * threshold:g} %"


class ModuleSelection:
    """The module-selection part of a report, normalised (integer layers, floats).

    Attributes:
        scales: effective scale ``alpha * gamma`` per ``{layer: {position}}``.
        initial: initial scale (alpha, at gamma = 1); a module missing here counts as 1.0.
        threshold: relative switch-off threshold.
        off: switched-off modules, ``{"layer", "position", "scale", "initial"}`` each.
        history: ``[(step, {layer: {position: gamma}})]`` after each outer step.
        meta_enabled: ``meta.enabled`` of the report (``None`` when unknown).

    """

    def __init__(self, scales: ScaleMap, initial: ScaleMap, threshold: float, off: list[dict],
                 history: list[tuple[int, ScaleMap]], meta_enabled: bool | None) -> None:
        self.scales, self.initial, self.threshold = scales, initial, threshold
        self.off, self.history, self.meta_enabled = off, history, meta_enabled

    @property
    def positions(self) -> list[str]:
        """Positions with a module, in the library's order."""
        return ordered_positions(self.scales)

    @property
    def num_modules(self) -> int:
        """How many modules have an effective scale."""
        return sum(len(row) for row in self.scales.values())

    def initial_of(self, layer: int, position: str) -> float:
        """Initial scale of one module (1.0 when the report does not say)."""
        return self.initial.get(layer, {}).get(position, 1.0)

    def off_keys(self) -> set[tuple[int, str]]:
        """``(layer, position)`` of every switched-off module."""
        return {(int(m["layer"]), str(m["position"])) for m in self.off}

    def grid(self) -> list[tuple[int, list[tuple[str, bool] | None]]]:
        """Table rows ``(layer, cells)`` in :attr:`positions` order, for the md and html tables.

        A cell is ``None`` where no module sits, else ``(text, switched_off)``: the effective
        scale, with the module's initial scale in brackets when modules start differently.
        """
        start, off, rows = self.uniform_initial(), self.off_keys(), []
        for layer, row in sorted(self.scales.items()):
            cells: list[tuple[str, bool] | None] = []
            for p in self.positions:
                if p not in row:
                    cells.append(None)
                    continue
                text = scale_text(row[p])
                if start is None:
                    text += f" ({scale_text(self.initial_of(layer, p))})"
                cells.append((text, (layer, p) in off))
            rows.append((layer, cells))
        return rows

    def uniform_initial(self) -> float | None:
        """The initial scale shared by every module, or ``None`` when they differ."""
        values = {self.initial_of(layer, p) for layer, row in self.scales.items() for p in row}
        return values.pop() if len(values) == 1 else None


def _history(raw) -> list[tuple[int, ScaleMap]]:
    out = []
    for entry in raw or []:
        if isinstance(entry, list | tuple) and len(entry) == 2 and _is_number(entry[0]):
            out.append((int(entry[0]), int_keys(entry[1])))
    return out


def _off_list(raw) -> list[dict]:
    out = []
    for m in raw or []:
        try:
            out.append({"layer": int(m["layer"]), "position": str(m["position"]),
                        "scale": float(m["scale"]), "initial": float(m.get("initial", 1.0))})
        except (KeyError, TypeError, ValueError):
            continue
    return out


def module_selection(report: Mapping) -> ModuleSelection | None:
    """Read the module-selection keys of a report; ``None`` when it has nothing to show.

    ``switched_off`` is taken from the report when present, otherwise derived from the
    effective and initial scales with the report's ``switch_off_threshold`` (default 0.05).
    """
    scales = int_keys(report.get("effective_scale"))
    initial = int_keys(report.get("initial_scale"))
    threshold = report.get("switch_off_threshold")
    threshold = float(threshold) if _is_number(threshold) else DEFAULT_THRESHOLD
    history = _history(report.get("gamma_history"))
    if isinstance(report.get("switched_off"), list):
        off = _off_list(report["switched_off"])
    else:
        off = [{"layer": layer, "position": p, "scale": v,
                "initial": initial.get(layer, {}).get(p, 1.0)}
               for layer in sorted(scales) for p, v in scales[layer].items()
               if math.isfinite(v) and is_switched_off(v, initial.get(layer, {}).get(p, 1.0),
                                                       threshold)]
    if not (scales or off or history):
        return None
    meta = report.get("meta")
    enabled = meta.get("enabled") if isinstance(meta, Mapping) else None
    return ModuleSelection(scales, initial, threshold, off, history,
                           None if enabled is None else bool(enabled))
