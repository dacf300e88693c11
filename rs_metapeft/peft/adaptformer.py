"""AdaptFormer: a parallel bottleneck adapter beside a ViT block's MLP, with a modulator."""

from __future__ import annotations

import torch
from torch import nn

from .block import attach_to_block
from .modulator import ModulatedModule

__all__ = ["AdaptFormer", "attach_adaptformer"]


class AdaptFormer(ModulatedModule):
    """``gamma * alpha * Up(relu(Down(LN_a(x))))``, added in parallel to the block's MLP branch.

    ``Up`` starts at zero, so a fresh adapter leaves the model unchanged.

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
        super().__init__(layer, "adaptformer", (dim,) if per_channel else (), gamma_param)
        self.alpha = alpha
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, bottleneck)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The modulated adapter output for block-residual input ``x``."""
        h = self.up(self.dropout(torch.relu(self.down(self.norm(x)))))
        return self.modulation() * self.alpha * h


def attach_adaptformer(block: nn.Module, adapter: AdaptFormer) -> None:
    """Attach an AdaptFormer to a timm ViT block in place (its own keys stay as they were).

    Raises:
        TypeError: the block is not a standard timm ``Block``.
    """
    attach_to_block(block, "adaptformer", adapter)
