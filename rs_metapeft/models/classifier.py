"""The full model: per-band normalisation -> spectral stem -> ViT (+ PEFT) -> head."""

from __future__ import annotations

import torch
from torch import nn

from ..peft import PeftConfig, inject_peft
from .backbone import create_backbone
from .head import build_head
from .stem import BandMixStem, BandNormalizer

__all__ = ["SpectralViTClassifier"]


class SpectralViTClassifier(nn.Module):
    """An RGB-pretrained ViT fine-tuned with modulated PEFT on any band set.

    Args:
        bands: input band names (the data's channel order).
        num_classes: number of classes.
        backbone: timm model name.
        weights: pretrained weights (see :func:`~rs_metapeft.models.backbone.create_backbone`).
        img_size: input size.
        patch_size: patch size.
        peft: PEFT spec; ``None`` inserts nothing (linear probe of the frozen backbone).
        head: ``linear`` or ``cosine``.
        backbone_kwargs: more timm model arguments (e.g. ``depth`` for a shallower test model).
    """

    def __init__(
        self,
        bands: list[str],
        num_classes: int,
        backbone: str = "vit_tiny_patch16_224",
        weights: str | None = None,
        img_size: int = 64,
        patch_size: int | None = 8,
        peft: PeftConfig | None = None,
        head: str = "linear",
        backbone_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.bands = list(bands)
        self.normalizer = BandNormalizer(len(bands))
        self.stem = BandMixStem(self.bands)
        self.backbone = create_backbone(backbone, weights, img_size, patch_size,
                                        **(backbone_kwargs or {}))
        self.peft_modules = inject_peft(self.backbone, peft) if peft is not None else []
        if peft is None:
            self.backbone.requires_grad_(False)
        self.head = build_head(head, self.backbone.num_features, num_classes)

    @property
    def depth(self) -> int:
        """Number of transformer blocks."""
        return len(self.backbone.blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features of a raw (un-normalised) band stack."""
        return self.backbone(self.stem(self.normalizer(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of a raw band stack (B, C, H, W)."""
        return self.head(self.features(x))
