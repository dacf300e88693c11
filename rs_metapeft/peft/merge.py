"""Fold LoRA into the base weights, and prune modules whose modulator is (near) zero."""

from __future__ import annotations

from torch import nn

from .block import detach_from_block
from .lora import LoRALinear
from .modulator import ModulatedModule

__all__ = ["merge_lora", "prune_modules", "remove_module"]


def merge_lora(model: nn.Module) -> int:
    """Replace every LoRA-carrying linear layer by a plain ``nn.Linear`` with the update folded in.

    The modulator is folded in too (``W + gamma * alpha/r * B A``), so the merged model computes
    the same function with no LoRA left. State-dict keys are those of the plain backbone.

    Returns:
        The number of LoRA modules merged.
    """
    merged = 0
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, layer in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        merged += len(layer.lora)
        setattr(parent, attr, layer.to_linear())
    return merged


def remove_module(model: nn.Module, layer: int, position: str) -> None:
    """Remove the PEFT module at (layer, position) (as if it had never been inserted)."""
    for owner in model.modules():
        if isinstance(owner, LoRALinear) and position in owner.lora \
                and owner.lora[position].layer == layer:
            del owner.lora[position]
            return
        child = getattr(owner, position, None) if position in ("adaptformer", "adapter") else None
        if isinstance(child, ModulatedModule) and child.layer == layer:
            detach_from_block(owner, position)
            return
    raise KeyError(f"no PEFT module at layer {layer}, position {position!r}")


def prune_modules(model: nn.Module, threshold: float) -> list[tuple[int, str]]:
    """Remove every module whose mean ``|gamma|`` is below ``threshold``.

    This turns the learned, continuous modulators into the discrete position and layer selection
    they relax (gamma = 0 means "no module here").

    Returns:
        The removed (layer, position) pairs.
    """
    if threshold < 0:
        raise ValueError(f"prune threshold must be >= 0, got {threshold}")
    doomed = [(m.layer, m.position) for m in model.modules()
              if isinstance(m, ModulatedModule)
              and float(m.modulation().detach().abs().mean()) < threshold]
    for layer, position in doomed:
        remove_module(model, layer, position)
    return sorted(doomed)
