"""The unmodulated baselines: linear probe, full fine-tuning, BitFit and VPT-deep."""

from __future__ import annotations

import torch
from torch import nn

from .block import attach_to_block

__all__ = ["VPTPrompts", "apply_baseline"]


class VPTPrompts(nn.Module):
    """VPT-deep prompts of one layer.

    Learned tokens are inserted after the prefix tokens at the block's input and dropped from its
    output, so every layer sees fresh prompts.

    Args:
        num_prompts: prompt tokens.
        dim: token width.
        num_prefix_tokens: class (and register) tokens in front of the patch tokens.
        layer: transformer block index.
    """

    def __init__(self, num_prompts: int, dim: int, num_prefix_tokens: int, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.num_prefix_tokens = num_prefix_tokens
        # Uniform in the range VPT uses (Xavier-like for a token of width dim).
        bound = (6.0 / (dim + num_prompts)) ** 0.5
        self.prompts = nn.Parameter(torch.empty(num_prompts, dim).uniform_(-bound, bound))

    def insert(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens with this layer's prompts inserted after the prefix tokens."""
        n = self.num_prefix_tokens
        prompts = self.prompts.to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :n], prompts, x[:, n:]], dim=1)

    def remove(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens with the prompt outputs dropped."""
        n = self.num_prefix_tokens
        return torch.cat([x[:, :n], x[:, n + self.prompts.shape[0]:]], dim=1)


def apply_baseline(backbone: nn.Module, method: str, layers: list[int], prompts: int) -> None:
    """Make a frozen backbone trainable as a baseline prescribes, in place.

    Args:
        backbone: a frozen timm VisionTransformer.
        method: ``linear_probe``, ``full``, ``bitfit`` or ``vpt_deep``.
        layers: adapted blocks (``vpt_deep``).
        prompts: prompt tokens per layer (``vpt_deep``).
    """
    if method == "linear_probe":
        return
    if method == "full":
        backbone.requires_grad_(True)
    elif method == "bitfit":
        for name, p in backbone.named_parameters():
            if name.endswith("bias"):
                p.requires_grad_(True)
    elif method == "vpt_deep":
        dim = backbone.num_features
        prefix = getattr(backbone, "num_prefix_tokens", 1)
        for layer in layers:
            attach_to_block(backbone.blocks[layer], "vpt", VPTPrompts(prompts, dim, prefix, layer))
    else:
        raise ValueError(f"unknown baseline {method!r}")
