"""Per-band statistics over a training split, computed in one streaming pass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["BandStatistics", "compute_band_statistics"]


@dataclass
class BandStatistics:
    """Mean and standard deviation of each band, with the band names they belong to.

    Attributes:
        bands: band names in channel order.
        mean: per-band mean.
        std: per-band standard deviation (floored at a tiny value so constant bands do not divide
            by zero).
        count: number of valid pixels seen per band.
    """

    bands: tuple[str, ...]
    mean: list[float]
    std: list[float]
    count: list[int]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {"bands": list(self.bands), "mean": self.mean, "std": self.std, "count": self.count}


def compute_band_statistics(
    images: Iterable[torch.Tensor], bands: Sequence[str], min_std: float = 1e-6
) -> BandStatistics:
    """Streaming, NaN-aware per-band mean and std (Chan et al. parallel update, float64).

    Args:
        images: tensors of shape (C, H, W) or (B, C, H, W); NaN pixels are skipped.
        bands: band names, one per channel.
        min_std: floor of the standard deviation.

    Returns:
        The statistics.

    Raises:
        ValueError: an image's channel count differs from ``len(bands)``, or a band has no valid
            pixel.
    """
    n_bands = len(bands)
    count = torch.zeros(n_bands, dtype=torch.float64)
    mean = torch.zeros(n_bands, dtype=torch.float64)
    m2 = torch.zeros(n_bands, dtype=torch.float64)
    for image in images:
        x = image if image.ndim == 4 else image.unsqueeze(0)
        if x.shape[1] != n_bands:
            raise ValueError(
                f"an image has {x.shape[1]} channels but data.bands lists {n_bands} "
                f"({', '.join(bands)}); fix data.bands to match the files"
            )
        x = x.transpose(0, 1).reshape(n_bands, -1).double()
        valid = ~torch.isnan(x)
        n_b = valid.sum(1).double()
        x0 = torch.where(valid, x, torch.zeros_like(x))
        mean_b = x0.sum(1) / n_b.clamp(min=1)
        m2_b = (torch.where(valid, x - mean_b[:, None], torch.zeros_like(x)) ** 2).sum(1)
        total = count + n_b
        delta = mean_b - mean
        safe = total.clamp(min=1)
        mean = mean + delta * n_b / safe
        m2 = m2 + m2_b + delta**2 * count * n_b / safe
        count = total
    empty = [b for b, c in zip(bands, count.tolist(), strict=True) if c == 0]
    if empty:
        raise ValueError(f"no valid pixels for bands {empty} in the training split")
    std = (m2 / count).sqrt().clamp(min=min_std)
    return BandStatistics(tuple(bands), mean.tolist(), std.tolist(), [int(c) for c in count])
