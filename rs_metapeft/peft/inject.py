"""Insert modulated PEFT modules (or a baseline) into a timm ViT (gamma: :mod:`.modulator`)."""

from __future__ import annotations

from torch import nn

from .adapter import Adapter
from .adaptformer import AdaptFormer
from .baselines import apply_baseline
from .block import attach_to_block
from .config import LORA_POSITIONS, PeftConfig
from .lora import LoRALinear
from .modulator import ModulatedModule, modulators

__all__ = ["inject_peft"]

_QKV = ("q", "k", "v")


def _lora_target(block: nn.Module, position: str) -> tuple[nn.Module, str, tuple[str, ...]]:
    """(parent module, attribute name, slice names) of the linear layer a position adapts."""
    if position in _QKV:
        return block.attn, "qkv", _QKV
    if position == "o":
        return block.attn, "proj", ("o",)
    return block.mlp, position, (position,)


def inject_peft(backbone: nn.Module, config: PeftConfig) -> list[ModulatedModule]:
    """Insert PEFT modules into a timm VisionTransformer (or set up a baseline), in place.

    Every backbone parameter is frozen first. Method ``modulated`` then inserts a module at each
    (layer, position), trainable, with its modulator (gamma) left to the meta optimiser; the
    baselines unfreeze what they train (``full``: everything, ``bitfit``: biases) or add VPT-deep
    prompts. Backbone state-dict keys do not change.

    Args:
        backbone: a timm ``VisionTransformer`` (anything with ``.blocks`` of timm ``Block``).
        config: method, positions, layers and sizes.

    Returns:
        The inserted modulated modules, in (layer, position) order (empty for baselines).
    """
    if not hasattr(backbone, "blocks"):
        raise TypeError(
            f"PEFT injection needs a timm ViT with .blocks, got {type(backbone).__name__}"
        )
    for p in backbone.parameters():
        p.requires_grad_(False)
    blocks = list(backbone.blocks)
    layers = config.resolve_layers(len(blocks))
    if config.method != "modulated":
        apply_baseline(backbone, config.method, layers, config.prompts)
        return []
    per_channel = config.gamma_shape == "channel"
    inserted: list[ModulatedModule] = []
    for layer in layers:
        block = blocks[layer]
        for position in config.positions:
            if position in LORA_POSITIONS:
                parent, attr, slices = _lora_target(block, position)
                target = getattr(parent, attr)
                if not isinstance(target, LoRALinear):
                    target = LoRALinear(target, slices)
                    setattr(parent, attr, target)
                inserted.append(target.add_lora(position, config.rank, config.alpha,
                                                config.dropout, layer, config.gamma_param,
                                                per_channel))
                continue
            dim = block.norm2.normalized_shape[0]
            kind = AdaptFormer if position == "adaptformer" else Adapter
            module = kind(dim, config.bottleneck, config.adapter_alpha, config.dropout, layer,
                          config.gamma_param, per_channel)
            attach_to_block(block, position, module)
            inserted.append(module)
    return [m for m in modulators(backbone) if any(m is i for i in inserted)]
