"""Classification heads."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CosineHead", "build_head"]


class CosineHead(nn.Module):
    """Cosine classifier: ``scale * cos(feature, class weight)``.

    Args:
        in_features: feature width.
        num_classes: number of classes.
        scale: logit scale (the paper uses 25).
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 25.0) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.randn(num_classes, in_features) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled cosine logits."""
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


def build_head(kind: str, in_features: int, num_classes: int, scale: float = 25.0) -> nn.Module:
    """A ``linear`` or ``cosine`` head."""
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    if kind == "cosine":
        return CosineHead(in_features, num_classes, scale)
    raise ValueError(f"model.head must be linear or cosine, got {kind!r}")
