"""Sequential bottleneck adapter (Houlsby-style, after the MLP), with a modulator."""

from __future__ import annotations

import torch
from torch import nn

from .modulator import ModulatedModule

__all__ = ["Adapter"]


class Adapter(ModulatedModule):
    """``h + gamma * alpha * Up(relu(Down(h)))`` on the output ``h`` of a block's MLP.

    It sits in series with the MLP, inside the residual branch (the block adds the adapted MLP
    output to its residual stream). ``Up`` starts at zero, so a fresh adapter is a no-op.

    Args:
        dim: token width.
        bottleneck: hidden width.
        alpha: scaling alpha.
        dropout: dropout inside the bottleneck.
        layer: transformer block index.
        gamma_param: ``"identity"`` or ``"softplus"``.
        per_channel: one gamma per output channel instead of a scalar.
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity", per_channel: bool = False) -> None:
        super().__init__(layer, "adapter", (dim,) if per_channel else (), gamma_param)
        self.alpha = alpha
        self.down = nn.Linear(dim, bottleneck)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The modulated update of the MLP output ``h`` (the block adds it to ``h``)."""
        return self.modulation() * self.alpha * self.up(self.dropout(torch.relu(self.down(h))))
