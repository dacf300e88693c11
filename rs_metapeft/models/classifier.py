"""The full model: per-band normalisation -> spectral stem -> ViT (+ PEFT) -> head."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal

import torch
from torch import nn

from ..bands import declare_bands, resolve_bands
from ..choices import check_choice
from ..peft import ModulatedModule, PeftConfig, inject_peft, peft_modules
from .backbone import create_backbone
from .head import build_head
from .patchify import PatchProjection
from .stem import PATCH_STEMS, BandNormalizer, build_stem, nearest_target
from .torchgeo_weights import pretraining_moments, resolve_backbone_bands, weights_settings

__all__ = ["Normalization", "SpectralViTClassifier"]

#: How the bands are normalised (``model.normalization``).
Normalization = Literal["pretrained", "data"]


class SpectralViTClassifier(nn.Module):
    """A pretrained ViT (RGB, multispectral or SAR) fine-tuned with modulated PEFT on any bands.

    Pixel stems (``rgb_select``, ``band_mix``) sit in front of the unchanged backbone as
    ``self.stem``. Patch stems (``patch_expand``, ``wavelength_hyper``) are built from the
    pretrained patch-embedding convolution and replace it as ``backbone.patch_embed.proj``
    (``self.stem`` is then an identity); :attr:`spectral_stem` is the stem either way. The stem
    always trains, whatever the PEFT method freezes.

    The stem maps the data's bands onto the bands the backbone takes: R, G, B, or the bands of
    TorchGeo weights (``backbone_bands``; a data band that is one of them passes straight
    through). TorchGeo weights also fix the architecture and, unless given, the patch size
    (:func:`~rs_metapeft.models.torchgeo_weights.weights_settings`); :attr:`notes` says what
    they replaced.

    Args:
        bands: input band names (the data's channel order).
        num_classes: number of classes.
        backbone: timm model name (TorchGeo weights replace another architecture by theirs).
        weights: pretrained weights (see :func:`~rs_metapeft.models.backbone.create_backbone`),
            e.g. ``torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO``.
        img_size: input size.
        patch_size: patch size (``None``: the backbone's own, e.g. that of TorchGeo weights).
        peft: PEFT spec; ``None`` (or ``positions: []``) is a linear probe of the frozen
            backbone; ``method`` picks a baseline.
        head: ``linear`` or ``cosine``.
        backbone_kwargs: more timm model arguments (e.g. ``depth`` for a shallower test model).
        stem: spectral stem, one of ``rgb_select``, ``band_mix``, ``patch_expand``,
            ``wavelength_hyper``.
        head_scale: logit scale of the cosine head.
        custom_bands: declarations of bands the registry does not know (the recipe's
            ``data.custom_bands``; see :func:`~rs_metapeft.bands.declare_bands`), declared
            before the stem resolves ``bands`` and recorded in :attr:`config`.
        backbone_bands: the bands the backbone's patch embedding takes, as band-registry names
            (``None``: R, G, B; filled in from TorchGeo weights). A local weights file of a
            multispectral backbone names its bands here.
        normalization: ``pretrained`` (default): each band standardised with the training
            split's statistics, then given the mean and std its backbone band had in
            pretraining where the weights record them (TorchGeo's Sentinel-2 and Sentinel-1
            SSL4EO-S12 weights), else left standardised; ``data``: standardised only.
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
        custom_bands: list[dict[str, Any]] | None = None,
        backbone_bands: list[str] | None = None,
        normalization: Normalization = "pretrained",
    ) -> None:
        super().__init__()
        declare_bands(custom_bands, "model.custom_bands")
        check_choice(normalization, Normalization, "model.normalization")
        peft = peft or PeftConfig(positions=[])
        backbone, patch_size, backbone_bands, notes = weights_settings(
            weights, backbone, patch_size, backbone_bands)
        #: What the weights replaced of the arguments (e.g. the backbone name), in words.
        self.notes = notes
        #: The arguments this model was built with (JSON-ready), for manifests and rebuilding
        #: (:meth:`from_config`); taken by name, as the signature is their one list.
        self.config = self.arguments(locals())
        self.config.update(bands=list(bands), peft=asdict(peft),
                           backbone_kwargs=dict(backbone_kwargs or {}),
                           backbone_bands=None if backbone_bands is None else list(backbone_bands))
        self.bands = list(bands)
        self.stem_kind = stem
        #: The bands the backbone takes (``None``: R, G, B).
        self.backbone_bands = None if backbone_bands is None else list(backbone_bands)
        target = None if backbone_bands is None else resolve_backbone_bands(backbone_bands)
        self.normalizer = BandNormalizer(len(bands))
        if normalization == "pretrained":
            self._set_pretrained_targets(weights, target)
        self.backbone = create_backbone(backbone, weights, img_size, patch_size,
                                        in_chans=3 if target is None else len(target),
                                        **(backbone_kwargs or {}))
        inject_peft(self.backbone, peft)
        spectral = build_stem(stem, self.bands, self.backbone.patch_embed.proj, target)
        spectral.requires_grad_(True)
        if stem in PATCH_STEMS:
            self.backbone.patch_embed.proj = spectral
            self.stem: nn.Module = nn.Identity()
        else:
            self.stem = spectral
            if type(self.backbone.patch_embed.proj) is nn.Conv2d:  # its gradient, as a product
                self.backbone.patch_embed.proj = PatchProjection.from_conv(
                    self.backbone.patch_embed.proj)
        self.head = build_head(head, self.backbone.num_features, num_classes, head_scale)

    def _set_pretrained_targets(self, weights: str | None, target) -> None:
        """Give each data band the pretraining mean and std of the backbone band nearest to it."""
        moments = pretraining_moments(weights) if target is not None else None
        if moments is None:
            return
        mean, std = [0.0] * len(self.bands), [1.0] * len(self.bands)
        for i, band in enumerate(resolve_bands(self.bands)):
            j = nearest_target(band, target)
            if j is not None:
                mean[i], std[i] = moments[0][j], moments[1][j]
        self.normalizer.set_targets(mean, std)

    @classmethod
    def arguments(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's arguments that ``config`` holds, in the signature's order.

        Args:
            config: a mapping holding (among others) model arguments: a :attr:`config`, an
                export manifest's ``model`` section, a task's hyperparameters.

        Returns:
            Those model arguments; every other key is left out.
        """
        names = list(inspect.signature(cls.__init__).parameters)[1:]  # without self
        return {name: config[name] for name in names if name in config}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> SpectralViTClassifier:
        """Build a model from a mapping of its arguments; other keys are ignored.

        Args:
            config: e.g. :attr:`config`, a manifest's ``model`` section or a task's
                hyperparameters (``peft`` may be a dict); arguments it lacks take their defaults
                (checkpoints older than an argument).
            **overrides: arguments to use instead of ``config``'s (e.g. ``weights=None``).

        Returns:
            A new model (its weights as the constructor makes them).
        """
        args = cls.arguments({**config, **overrides})
        if isinstance(args.get("peft"), Mapping):
            args["peft"] = PeftConfig(**args["peft"])
        return cls(**args)

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
