"""Models: timm backbones, spectral stems, heads, and the composed classifier."""

from .backbone import BackboneWeightsError, create_backbone
from .classifier import SpectralViTClassifier
from .head import CosineHead, build_head
from .stem import BandMixStem, BandNormalizer, rgb_band_indices

__all__ = [
    "BackboneWeightsError",
    "BandMixStem",
    "BandNormalizer",
    "CosineHead",
    "SpectralViTClassifier",
    "build_head",
    "create_backbone",
    "rgb_band_indices",
]
