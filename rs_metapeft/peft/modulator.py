"""The one home of the modulator gamma: its parametrisations, bounds, the gamma / inner split, maps.

Every other part of the package asks this module about gamma. Modulators are found by module type
(:class:`ModulatedModule`), never by a parameter name: timm's LayerScale also calls its weight
``gamma``, and the meta optimiser must never step it.

Parametrisations of the effective gamma (what multiplies a module's output) from the raw
parameter ``theta`` that the meta optimiser moves:

* ``identity``: gamma = theta (theta starts at 1). A step of size s moves gamma by s everywhere.
* ``softplus``: gamma = softplus(theta) (> 0; theta starts at softplus^-1(1)).
* ``log``: gamma = exp(theta) (> 0; theta starts at 0). A step moves gamma by a *factor*, so gamma
  can reach the scales a search picks (alpha * gamma of 3-9) and fall towards 0 in as many steps.
"""

from __future__ import annotations

import math
from typing import get_args

import torch
from torch import nn
from torch.nn import functional as F

from ..choices import check_choice
from .config import POSITIONS, GammaParam

__all__ = [
    "PARAMETRISATIONS",
    "ModulatedModule",
    "clamp_modulators",
    "effective_scale_map",
    "gamma_map",
    "gamma_parameters",
    "gamma_table",
    "initial_scale_map",
    "modulators",
    "peft_modules",
    "split_parameters",
    "switched_off",
]

#: The parametrisations of gamma (see the module docstring).
PARAMETRISATIONS = get_args(GammaParam)

_SOFTPLUS_INV_OF_ONE = math.log(math.e - 1.0)  # softplus(x) = 1 at this x


def _to_raw(kind: str, value: float) -> float:
    """The raw theta whose modulation is ``value`` (``-inf`` where it is only approached)."""
    if kind == "identity":
        return value
    if value <= 0:
        return -math.inf
    if kind == "log":
        return math.log(value)
    return value + math.log(-math.expm1(-value))  # softplus^-1, stable for large values


class ModulatedModule(nn.Module):
    """A PEFT module at one (layer, position) whose output is multiplied by its modulator gamma.

    gamma is a parameter (initialised so that the effective value is 1) that only the outer, meta
    step trains; gamma = 0 (or close to it) switches the module off.

    Args:
        layer: index of the transformer block.
        position: where in the block the module sits (``q``, ``k``, ``v``, ``o``, ``fc1``, ``fc2``,
            ``adaptformer``, ...).
        gamma_shape: ``()`` for a scalar gamma, ``(channels,)`` for a per-channel one.
        gamma_param: ``"identity"``, ``"softplus"`` or ``"log"`` (see the module docstring).
        base_scale: the module's fixed scaling alpha, so that ``alpha * gamma`` is its effective
            scale (reports and selection speak of that).
    """

    def __init__(
        self, layer: int, position: str, gamma_shape: tuple[int, ...] = (),
        gamma_param: GammaParam = "identity", base_scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_choice(gamma_param, GammaParam, "gamma_param")
        self.layer = layer
        self.position = position
        self.gamma_param = gamma_param
        self.base_scale = float(base_scale)
        # Frozen for the inner optimiser; the meta step computes its gradient functionally.
        self.gamma = nn.Parameter(torch.full(gamma_shape, _to_raw(gamma_param, 1.0)),
                                  requires_grad=False)

    def modulation(self) -> torch.Tensor:
        """The effective gamma (what multiplies the module's output)."""
        if self.gamma_param == "softplus":
            return F.softplus(self.gamma)
        if self.gamma_param == "log":
            return torch.exp(self.gamma)
        return self.gamma

    def effective_scale(self) -> float:
        """``alpha * gamma`` (mean over channels for a per-channel gamma)."""
        return self.base_scale * float(self.modulation().detach().float().mean())

    def set_modulation(self, value: float) -> None:
        """Set the effective gamma to ``value`` everywhere; 0 switches the module off.

        A positive parametrisation reaches 0 only at ``theta = -inf``, where its gradient is 0:
        a module switched off by hand stays off. Negative values need ``identity``.
        """
        if value < 0 and self.gamma_param != "identity":
            raise ValueError(f"{self.gamma_param} modulators cannot be set to {value} (< 0)")
        with torch.no_grad():
            self.gamma.fill_(_to_raw(self.gamma_param, value))

    def clamp_(self, low: float | None, high: float | None) -> None:
        """Keep the effective gamma within ``[low, high]`` (``None``: unbounded on that side).

        Applied on the raw parameter, so every parametrisation respects the bounds (a bound
        that a positive parametrisation cannot reach, such as ``low <= 0``, is no constraint).
        """
        lo = None if low is None else _to_raw(self.gamma_param, low)
        hi = None if high is None else _to_raw(self.gamma_param, high)
        lo = None if lo is None or math.isinf(lo) else lo
        if hi is not None and math.isinf(hi):  # a positive gamma can never stay <= 0
            raise ValueError(f"gamma_max {high} is unreachable for {self.gamma_param} modulators")
        if lo is None and hi is None:
            return
        with torch.no_grad():
            self.gamma.clamp_(lo, hi)


# -- finding modulators ---------------------------------------------------------------------------
def modulators(model: nn.Module) -> list[ModulatedModule]:
    """Every modulated PEFT module of a model, found by type, in (layer, position) order."""
    mods = [m for m in model.modules() if isinstance(m, ModulatedModule)]
    return sorted(mods, key=lambda m: (m.layer, _position_rank(m.position)))


#: An older name of :func:`modulators`.
peft_modules = modulators


def _position_rank(position: str) -> int:
    return POSITIONS.index(position) if position in POSITIONS else len(POSITIONS)


def gamma_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The modulator parameters of a model by parameter name (found by module type)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, ModulatedModule):
            out[f"{name}.gamma" if name else "gamma"] = module.gamma
    return out


def split_parameters(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(phi, gamma): what the inner optimiser trains, and the modulators the meta step trains.

    ``phi`` holds every parameter with ``requires_grad`` that is not a modulator; frozen backbone
    tensors (LayerScale included) are in neither.
    """
    gamma = gamma_parameters(model)
    ids = {id(p) for p in gamma.values()}
    phi = {n: p for n, p in model.named_parameters() if p.requires_grad and id(p) not in ids}
    return phi, gamma


def clamp_modulators(model: nn.Module, low: float | None, high: float | None) -> None:
    """Apply :meth:`ModulatedModule.clamp_` to every modulator of ``model``."""
    for module in modulators(model):
        module.clamp_(low, high)


# -- maps for reports, checkpoints and exports ----------------------------------------------------
GammaMap = dict[int, dict[str, float]]


def gamma_map(model: nn.Module) -> GammaMap:
    """Effective gamma of every module as ``{layer: {position: value}}`` (mean for vectors)."""
    result: GammaMap = {}
    for m in modulators(model):
        result.setdefault(m.layer, {})[m.position] = float(m.modulation().detach().float().mean())
    return result


def effective_scale_map(model: nn.Module) -> GammaMap:
    """``alpha * gamma`` of every module as ``{layer: {position: value}}``."""
    result: GammaMap = {}
    for m in modulators(model):
        result.setdefault(m.layer, {})[m.position] = m.effective_scale()
    return result


def initial_scale_map(model: nn.Module) -> GammaMap:
    """The effective scale every module started from (its alpha, at gamma = 1)."""
    result: GammaMap = {}
    for m in modulators(model):
        result.setdefault(m.layer, {})[m.position] = m.base_scale
    return result


def switched_off(scales: GammaMap, initial: GammaMap, threshold: float) -> list[dict]:
    """Modules whose effective scale fell below ``threshold`` times their initial scale.

    Args:
        scales: :func:`effective_scale_map` of the trained model.
        initial: :func:`initial_scale_map` (the scale at gamma = 1).
        threshold: relative threshold (0.05: the module acts with under 5 % of its initial scale).

    Returns:
        ``{"layer", "position", "scale", "initial"}`` per switched-off module, in map order.
    """
    out = []
    for layer in sorted(scales):
        for position, value in scales[layer].items():
            start = initial.get(layer, {}).get(position, 1.0)
            if abs(value) < threshold * abs(start):
                out.append({"layer": layer, "position": position, "scale": value,
                            "initial": start})
    return out


def gamma_table(model: nn.Module, depth: int) -> tuple[torch.Tensor, list[str]]:
    """Gamma as a (depth x positions) tensor, NaN where no module sits, with the position names."""
    table = torch.full((depth, len(POSITIONS)), math.nan)
    for layer, row in gamma_map(model).items():
        for position, value in row.items():
            table[layer, POSITIONS.index(position)] = value
    return table, list(POSITIONS)
