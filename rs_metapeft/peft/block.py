"""A timm ViT ``Block`` that can carry per-block PEFT modules (AdaptFormer, adapter, VPT prompts).

Modules are attached as submodules named ``adaptformer``, ``adapter`` and ``vpt``, so the block's
own state-dict keys stay unchanged; the block's class is swapped for a subclass whose forward
routes through them. A slot set to ``None`` (pruned) is skipped.
"""

from __future__ import annotations

from functools import cache

from timm.models.vision_transformer import Block
from torch import nn

__all__ = ["BLOCK_SLOTS", "attach_to_block", "detach_from_block"]

BLOCK_SLOTS = ("adaptformer", "adapter", "vpt")


class _PeftBlockMixin:
    """Forward of a timm ``Block`` with optional VPT prompts, sequential adapter and AdaptFormer."""

    def forward(self, x, attn_mask=None, is_causal=False):  # noqa: D102 - mirrors timm Block
        vpt = getattr(self, "vpt", None)
        if vpt is not None:
            if attn_mask is not None:
                raise ValueError("VPT prompts cannot be combined with an attention mask")
            x = vpt.insert(x)
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), attn_mask=attn_mask,
                                                   is_causal=is_causal)))
        h = self.mlp(self.norm2(x))
        adapter = getattr(self, "adapter", None)
        if adapter is not None:  # sequential: acts on the MLP output, inside the residual branch
            h = h + adapter(h)
        out = x + self.drop_path2(self.ls2(h))
        adaptformer = getattr(self, "adaptformer", None)
        if adaptformer is not None:  # parallel to the MLP, on the block's residual stream
            out = out + adaptformer(x)
        return vpt.remove(out) if vpt is not None else out


@cache
def _peft_class(block_cls: type) -> type:
    return type(f"Peft{block_cls.__name__}", (_PeftBlockMixin, block_cls), {})


def attach_to_block(block: nn.Module, slot: str, module: nn.Module) -> None:
    """Attach ``module`` to a timm ViT block's ``slot`` in place.

    Raises:
        TypeError: the block is not a standard timm ``Block`` (other block types have other
            residual layouts).
    """
    if slot not in BLOCK_SLOTS:
        raise ValueError(f"unknown block slot {slot!r}; valid: {BLOCK_SLOTS}")
    if type(block) is not Block and not isinstance(block, _PeftBlockMixin):
        raise TypeError(
            f"{slot} needs timm's standard ViT Block, got {type(block).__name__}; "
            "use LoRA positions for this backbone"
        )
    device = next(block.parameters()).device
    block.add_module(slot, module.to(device))
    block.__class__ = _peft_class(Block)


def detach_from_block(block: nn.Module, slot: str) -> None:
    """Remove a slot's module (the block then behaves as without it)."""
    if isinstance(block, _PeftBlockMixin) and getattr(block, slot, None) is not None:
        delattr(block, slot)


