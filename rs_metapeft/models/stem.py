"""Spectral stems: map any band set onto the three RGB inputs of an RGB-pretrained ViT."""

from __future__ import annotations

import torch
from kornia.enhance import normalize
from torch import nn

from ..bands import OPTICAL, RGB_WAVELENGTHS_NM, resolve_bands

__all__ = ["BandMixStem", "BandNormalizer", "rgb_band_indices"]


def rgb_band_indices(band_names: list[str]) -> list[int]:
    """For each of R, G, B, the index of the input band that should feed it.

    Optical bands: the band whose centre wavelength is nearest to the channel's. SAR-only inputs
    have no wavelengths: the first polarisation (e.g. VV) feeds R, the second (e.g. VH) feeds G,
    and B takes the first again (the stem's mixing weights then learn a better blend).

    Raises:
        UnknownBandError: a band is not in the registry.
    """
    bands = resolve_bands(band_names)
    optical = [i for i, b in enumerate(bands) if b.modality == OPTICAL]
    if optical:
        return [
            min(optical, key=lambda i: abs(bands[i].wavelength_nm - target))
            for target in RGB_WAVELENGTHS_NM
        ]
    order = list(range(len(bands)))
    return [order[0], order[min(1, len(order) - 1)], order[0]]


class BandNormalizer(nn.Module):
    """Per-band standardisation with the training split's statistics, on device (kornia).

    The statistics are buffers, so they travel inside every checkpoint with the model.

    Args:
        num_bands: number of input bands.
    """

    def __init__(self, num_bands: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_bands))
        self.register_buffer("std", torch.ones(num_bands))
        self.register_buffer("fitted", torch.tensor(False))

    def set_statistics(self, mean: list[float], std: list[float]) -> None:
        """Store per-band mean and std (from the training split)."""
        if len(mean) != self.mean.numel() or len(std) != self.std.numel():
            raise ValueError(
                f"statistics for {len(mean)} bands given to a model of {self.mean.numel()} bands"
            )
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise each band."""
        return normalize(x, self.mean, self.std)


class BandMixStem(nn.Module):
    """A learned 1x1 band mixing C -> 3 in front of the pretrained patch embedding.

    Initialised from band wavelengths: R, G and B each copy the nearest input band (weight 1, all
    others 0), so at initialisation the pretrained model sees the RGB bands of the input, and
    training learns how the remaining bands (NIR, SWIR, red edge, SAR) should contribute.

    Args:
        bands: input band names.
    """

    def __init__(self, bands: list[str]) -> None:
        super().__init__()
        self.bands = list(bands)
        self.mix = nn.Conv2d(len(bands), 3, kernel_size=1)
        with torch.no_grad():
            self.mix.weight.zero_()
            self.mix.bias.zero_()
            for out_ch, in_ch in enumerate(rgb_band_indices(self.bands)):
                self.mix.weight[out_ch, in_ch] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix normalised bands into three channels."""
        return self.mix(x)
