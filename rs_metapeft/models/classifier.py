"""The full model: per-band normalisation -> spectral stem -> ViT (+ PEFT) -> head."""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from ..peft import ModulatedModule, PeftConfig, inject_peft, peft_modules
from .backbone import create_backbone
from .head import build_head
from .stem import PATCH_STEMS, BandNormalizer, build_stem

__all__ = ["SpectralViTClassifier"]


class SpectralViTClassifier(nn.Module):
    """An RGB-pretrained ViT fine-tuned with modulated PEFT on any band set.

    Pixel stems (``rgb_select``, ``band_mix``) sit in front of the unchanged backbone as
    ``self.stem``. Patch stems (``patch_expand``, ``wavelength_hyper``) are built from the
    pretrained patch-embedding convolution and replace it as ``backbone.patch_embed.proj``
    (``self.stem`` is then an identity); :attr:`spectral_stem` is the stem either way. The stem
    always trains, whatever the PEFT method freezes.

    Args:
        bands: input band names (the data's channel order).
        num_classes: number of classes.
        backbone: timm model name.
        weights: pretrained weights (see :func:`~rs_metapeft.models.backbone.create_backbone`).
        img_size: input size.
        patch_size: patch size.
        peft: PEFT spec; ``None`` (or ``positions: []``) is a linear probe of the frozen
            backbone; ``method`` picks a baseline.
        head: ``linear`` or ``cosine``.
        backbone_kwargs: more timm model arguments (e.g. ``depth`` for a shallower test model).
        stem: spectral stem, one of ``rgb_select``, ``band_mix``, ``patch_expand``,
            ``wavelength_hyper``.
        head_scale: logit scale of the cosine head.
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
        stem: str = "band_mix",
        head_scale: float = 25.0,
    ) -> None:
        super().__init__()
        peft = peft or PeftConfig(positions=[])
        #: The arguments this model was built with (JSON-ready), for manifests and rebuilding.
        self.config = {
            "bands": list(bands), "num_classes": num_classes, "backbone": backbone,
            "weights": weights, "img_size": img_size, "patch_size": patch_size,
            "peft": asdict(peft), "head": head, "backbone_kwargs": dict(backbone_kwargs or {}),
            "stem": stem, "head_scale": head_scale,
        }
        self.bands = list(bands)
        self.stem_kind = stem
        self.normalizer = BandNormalizer(len(bands))
        self.backbone = create_backbone(backbone, weights, img_size, patch_size,
                                        **(backbone_kwargs or {}))
        inject_peft(self.backbone, peft)
        spectral = build_stem(stem, self.bands, self.backbone.patch_embed.proj)
        spectral.requires_grad_(True)
        if stem in PATCH_STEMS:
            self.backbone.patch_embed.proj = spectral
            self.stem: nn.Module = nn.Identity()
        else:
            self.stem = spectral
        self.head = build_head(head, self.backbone.num_features, num_classes, head_scale)

    @property
    def spectral_stem(self) -> nn.Module:
        """The stem module, wherever it sits."""
        return self.backbone.patch_embed.proj if self.stem_kind in PATCH_STEMS else self.stem

    @property
    def peft_modules(self) -> list[ModulatedModule]:
        """The modulated PEFT modules, in (layer, position) order (pruned ones are gone)."""
        return peft_modules(self.backbone)

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
