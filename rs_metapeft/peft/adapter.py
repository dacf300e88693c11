"""Bottleneck adapters with a modulator: the sequential Adapter, and the base AdaptFormer shares."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .modulator import ModulatedModule

__all__ = ["Adapter", "BottleneckModule"]


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

        The scale ``gamma * alpha`` is folded into the narrow side (the hidden activations and
        ``Up``'s bias, or ``Up``'s rows for a per-channel gamma), never applied to a full-width
        output: cheaper, no extra full-width activation kept for backward, same gradients.
        """
        hidden = self.dropout(torch.relu(self.down(h)))
        scale = self.modulation() * self.alpha
        if scale.dim():  # per output channel
            return F.linear(hidden, self.up.weight * scale.unsqueeze(-1), self.up.bias * scale)
        return F.linear(hidden * scale, self.up.weight, self.up.bias * scale)


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
