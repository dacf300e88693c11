"""Bottleneck adapters with a modulator: the sequential Adapter, and the base AdaptFormer shares."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .modulator import ModulatedModule

__all__ = ["Adapter", "BottleneckModule", "scaled_up"]


def scaled_up(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
              scale: torch.Tensor) -> torch.Tensor:
    """``scale * (hidden Up^T + b)`` with ``scale`` folded into the narrow side.

    A scalar scale multiplies the hidden activations and the bias; a per-output-channel scale
    multiplies ``Up``'s rows. No full-width output is multiplied by a scalar, and no extra
    full-width activation is kept for backward.
    """
    if scale.dim():  # per output channel
        return F.linear(hidden, weight * scale.unsqueeze(-1), bias * scale)
    return F.linear(hidden * scale, weight, bias * scale)


class BottleneckModule(ModulatedModule):
    """``gamma * alpha * Up(relu(Down(h)))``; ``Up`` starts at zero, so a fresh module is a no-op.

    Args:
        dim: token width.
        bottleneck: hidden width.
        alpha: scaling alpha.
        dropout: dropout inside the bottleneck.
        layer: transformer block index.
        position: ``adapter`` or ``adaptformer``.
        gamma_param: ``"identity"``, ``"softplus"`` or ``"log"``.
        per_channel: one gamma per output channel instead of a scalar.
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 position: str, gamma_param: str = "identity", per_channel: bool = False) -> None:
        super().__init__(layer, position, (dim,) if per_channel else (), gamma_param, alpha)
        self.alpha = alpha
        self.down = nn.Linear(dim, bottleneck)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def bottleneck(self, h: torch.Tensor) -> torch.Tensor:
        """Return the modulated bottleneck output for ``h``.

        The scale ``gamma * alpha`` is folded into the narrow side (:func:`scaled_up`), never
        applied to a full-width output: cheaper, no extra full-width activation kept for
        backward, same gradients.
        """
        hidden = self.dropout(torch.relu(self.down(h)))
        return scaled_up(hidden, self.up.weight, self.up.bias, self.scale())

    def scale(self) -> torch.Tensor:
        """The module's whole scale ``gamma * alpha`` (a scalar or one per output channel)."""
        return self.modulation() * self.alpha


class Adapter(BottleneckModule):
    """Sequential (Houlsby-style) adapter: ``h + gamma * alpha * Up(relu(Down(h)))``.

    ``h`` is the output of a block's MLP: the adapter sits in series with the MLP, inside the
    residual branch (the block adds the adapted MLP output to its residual stream).

    Args:
        dim: token width.
        bottleneck: hidden width.
        alpha: scaling alpha.
        dropout: dropout inside the bottleneck.
        layer: transformer block index.
        gamma_param: ``"identity"``, ``"softplus"`` or ``"log"``.
        per_channel: one gamma per output channel instead of a scalar.
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity", per_channel: bool = False) -> None:
        super().__init__(dim, bottleneck, alpha, dropout, layer, "adapter", gamma_param,
                         per_channel)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Return the modulated update of the MLP output ``h`` (the block adds it to ``h``)."""
        return self.bottleneck(h)
