"""AdaptFormer: a parallel bottleneck adapter beside a ViT block's MLP, with a modulator."""

from __future__ import annotations

import torch
from torch import nn

from .adapter import BottleneckModule
from .block import attach_to_block

__all__ = ["AdaptFormer", "attach_adaptformer"]


class AdaptFormer(BottleneckModule):
    """``gamma * alpha * Up(relu(Down(LN_a(x))))``, added in parallel to the block's MLP branch.

    ``Up`` starts at zero, so a fresh adapter leaves the model unchanged. Arguments as for
    :class:`~rs_metapeft.peft.adapter.Adapter`.
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity", per_channel: bool = False) -> None:
        super().__init__(dim, bottleneck, alpha, dropout, layer, "adaptformer", gamma_param,
                         per_channel)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the modulated adapter output for block-residual input ``x``."""
        return self.bottleneck(self.norm(x))


def attach_adaptformer(block: nn.Module, adapter: AdaptFormer) -> None:
    """Attach an AdaptFormer to a timm ViT block in place (its own keys stay as they were).

    Raises:
        TypeError: the block is not a standard timm ``Block``.
    """
    attach_to_block(block, "adaptformer", adapter)
