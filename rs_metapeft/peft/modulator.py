"""The modulator gamma that scales every PEFT module, and the base class of modulated modules."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GAMMA_SUFFIX", "ModulatedModule", "gamma_parameters", "is_gamma"]

#: Every modulator parameter's name ends with this, so the meta optimiser finds them by name and
#: the main optimiser never sees them.
GAMMA_SUFFIX = "gamma"

_SOFTPLUS_OF_ZERO_INV = math.log(math.e - 1.0)  # softplus(x) = 1 at this x


def is_gamma(name: str) -> bool:
    """Whether a parameter name is a modulator."""
    return name.rsplit(".", 1)[-1] == GAMMA_SUFFIX


def gamma_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """All modulators of a model, by parameter name."""
    return {n: p for n, p in model.named_parameters() if is_gamma(n)}


class ModulatedModule(nn.Module):
    """A PEFT module at one (layer, position) whose output is multiplied by its modulator gamma.

    gamma is a parameter (initialised so that the effective value is 1) that the outer, meta step
    trains; gamma = 0 switches the module off. The effective modulation is the raw parameter
    (``"identity"``) or its softplus (``"softplus"``, which keeps it non-negative).

    Args:
        layer: index of the transformer block.
        position: where in the block the module sits (``q``, ``k``, ``v``, ``o``, ``fc1``, ``fc2``,
            ``adaptformer``, ...).
        gamma_shape: ``()`` for a scalar gamma, ``(channels,)`` for a per-channel one.
        gamma_param: ``"identity"`` or ``"softplus"``.
    """

    def __init__(
        self, layer: int, position: str, gamma_shape: tuple[int, ...] = (),
        gamma_param: str = "identity",
    ) -> None:
        super().__init__()
        if gamma_param not in ("identity", "softplus"):
            raise ValueError(f"gamma_param must be identity or softplus, got {gamma_param!r}")
        self.layer = layer
        self.position = position
        self.gamma_param = gamma_param
        init = 1.0 if gamma_param == "identity" else _SOFTPLUS_OF_ZERO_INV
        # Frozen for the main optimiser; the meta step computes its gradient functionally.
        self.gamma = nn.Parameter(torch.full(gamma_shape, init), requires_grad=False)

    def modulation(self) -> torch.Tensor:
        """The effective gamma (what multiplies the module's output)."""
        return F.softplus(self.gamma) if self.gamma_param == "softplus" else self.gamma

    def set_modulation(self, value: float) -> None:
        """Set the effective gamma to ``value`` everywhere (0 switches the module off)."""
        with torch.no_grad():
            if self.gamma_param == "softplus":
                if value <= 0:
                    raise ValueError("softplus modulators cannot be set to a value <= 0")
                value = math.log(math.expm1(value))
            self.gamma.fill_(value)
