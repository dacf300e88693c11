"""Models: timm backbones, spectral stems, heads, and the composed classifier."""

from .backbone import BackboneWeightsError, create_backbone
from .classifier import SpectralViTClassifier
from .head import CosineHead, build_head, class_mean_features, init_head_from_class_means
from .stem import (
    PATCH_STEMS,
    PIXEL_STEMS,
    STEMS,
    BandMixStem,
    BandNormalizer,
    PatchExpandStem,
    RGBSelectStem,
    WavelengthHyperStem,
    build_stem,
    rgb_band_indices,
)

__all__ = [
    "PATCH_STEMS",
    "PIXEL_STEMS",
    "STEMS",
    "BackboneWeightsError",
    "BandMixStem",
    "BandNormalizer",
    "CosineHead",
    "PatchExpandStem",
    "RGBSelectStem",
    "SpectralViTClassifier",
    "WavelengthHyperStem",
    "build_head",
    "build_stem",
    "class_mean_features",
    "create_backbone",
    "init_head_from_class_means",
    "rgb_band_indices",
]
