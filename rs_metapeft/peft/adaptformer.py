"""AdaptFormer: a parallel bottleneck adapter beside a ViT block's MLP, with a modulator."""

from __future__ import annotations

from functools import cache

import torch
from timm.models.vision_transformer import Block
from torch import nn

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
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity") -> None:
        super().__init__(layer, "adaptformer", (), gamma_param)
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


class _AdaptFormerBlockMixin:
    """Forward of a timm ``Block`` with the AdaptFormer branch beside the MLP."""

    def forward(self, x, attn_mask=None, is_causal=False):  # noqa: D102 - mirrors timm Block
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x)))) + self.adaptformer(x)


@cache
def _adapted_class(block_cls: type) -> type:
    return type(f"AdaptFormer{block_cls.__name__}", (_AdaptFormerBlockMixin, block_cls), {})


def attach_adaptformer(block: nn.Module, adapter: AdaptFormer) -> None:
    """Attach an AdaptFormer to a timm ViT block in place (its own keys stay as they were).

    Raises:
        TypeError: the block is not a standard timm ``Block`` (other block types have other
            residual layouts).
    """
    if type(block) is not Block and not isinstance(block, _AdaptFormerBlockMixin):
        raise TypeError(
            f"AdaptFormer needs timm's standard ViT Block, got {type(block).__name__}; "
            "use LoRA positions for this backbone"
        )
    block.add_module("adaptformer", adapter)
    block.__class__ = _adapted_class(Block)
