"""Per-band statistics over a training split, computed in one streaming pass.

Mean and standard deviation are exact (Chan et al. parallel update in float64); the 2nd and 98th
percentiles come from a seeded uniform sample of at most ``max_samples`` valid pixels per band
(a bottom-k sketch: every valid pixel gets a random key and the k smallest keys are kept), so
memory stays bounded however large the split. NaN pixels (nodata, after the readers' masking)
and an optional ``nodata`` value are skipped. Results can be cached as JSON keyed by dataset and
bands; the model's ``BandNormalizer`` applies them on device.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..bands import BandMismatchError, check_compatible
from ..io import atomic_write_json

# BandMismatchError lives in rs_metapeft.bands (the one band check); re-exported for this path.
__all__ = [
    "BandMismatchError",
    "BandStatistics",
    "cached_band_statistics",
    "compute_band_statistics",
    "statistics_cache_path",
]


@dataclass
class BandStatistics:
    """Mean and standard deviation of each band, with the band names they belong to.

    Attributes:
        bands: band names in channel order.
        mean: per-band mean.
        std: per-band standard deviation (floored at a tiny value so constant bands do not divide
            by zero).
        count: number of valid pixels seen per band.
        p02: per-band 2nd percentile (empty when not computed).
        p98: per-band 98th percentile (empty when not computed).
    """

    bands: tuple[str, ...]
    mean: list[float]
    std: list[float]
    count: list[int]
    p02: list[float] = field(default_factory=list)
    p98: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "bands": list(self.bands), "mean": self.mean, "std": self.std, "count": self.count,
            "p02": self.p02, "p98": self.p98,
        }

    @classmethod
    def from_dict(cls, data: dict) -> BandStatistics:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(data["bands"]), list(data["mean"]), list(data["std"]), list(data["count"]),
            list(data.get("p02", [])), list(data.get("p98", [])),
        )

    def check_bands(self, bands: Sequence[str]) -> None:
        """Raise :class:`~rs_metapeft.bands.BandMismatchError` unless these are for ``bands``."""
        check_compatible(self.bands, bands, where="the band statistics",
                         fix="use the same data.bands (same order), or recompute the statistics")


def compute_band_statistics(
    images: Iterable[torch.Tensor],
    bands: Sequence[str],
    min_std: float = 1e-6,
    nodata: float | None = None,
    max_samples: int = 200_000,
    seed: int = 0,
) -> BandStatistics:
    """Streaming, nodata-aware per-band mean, std and 2nd/98th percentiles.

    Args:
        images: tensors of shape (C, H, W) or (B, C, H, W); NaN pixels are skipped.
        bands: band names, one per channel.
        min_std: floor of the standard deviation.
        nodata: a pixel value to skip as well (besides NaN).
        max_samples: pixels per band kept for the percentiles.
        seed: seed of the percentile sample.

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
    generator = torch.Generator().manual_seed(seed)
    kept = [torch.empty(0, dtype=torch.float64) for _ in range(n_bands)]
    keys = [torch.empty(0) for _ in range(n_bands)]
    for image in images:
        x = image if image.ndim == 4 else image.unsqueeze(0)
        if x.shape[1] != n_bands:
            raise ValueError(
                f"an image has {x.shape[1]} channels but data.bands lists {n_bands} "
                f"({', '.join(bands)}); fix data.bands to match the files"
            )
        x = x.transpose(0, 1).reshape(n_bands, -1).double()
        valid = ~torch.isnan(x)
        if nodata is not None:
            valid &= x != nodata
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
        for b in range(n_bands):
            values = x[b][valid[b]]
            new_keys = torch.rand(values.numel(), generator=generator)
            all_keys = torch.cat([keys[b], new_keys])
            all_values = torch.cat([kept[b], values])
            if all_keys.numel() > max_samples:
                order = torch.topk(all_keys, max_samples, largest=False).indices
                all_keys, all_values = all_keys[order], all_values[order]
            keys[b], kept[b] = all_keys, all_values
    empty = [b for b, c in zip(bands, count.tolist(), strict=True) if c == 0]
    if empty:
        raise ValueError(f"no valid pixels for bands {empty} in the training split")
    std = (m2 / count).sqrt().clamp(min=min_std)
    q = torch.tensor([0.02, 0.98], dtype=torch.float64)
    pct = [torch.quantile(v, q).tolist() for v in kept]
    return BandStatistics(
        tuple(bands), mean.tolist(), std.tolist(), [int(c) for c in count],
        [p[0] for p in pct], [p[1] for p in pct],
    )


def statistics_cache_path(
    cache_dir: str | os.PathLike, dataset_key: str, bands: Sequence[str]
) -> Path:
    """Where the statistics of one dataset and band list are cached."""
    digest = hashlib.sha256(json.dumps([dataset_key, list(bands)]).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"band-stats-{digest}.json"


def cached_band_statistics(
    cache_dir: str | os.PathLike | None,
    dataset_key: str,
    bands: Sequence[str],
    compute: Callable[[], BandStatistics],
) -> BandStatistics:
    """Statistics from the JSON cache, or computed and cached (written atomically).

    Args:
        cache_dir: cache folder; ``None`` always computes.
        dataset_key: identifies the data the statistics are over (dataset, root, split, subset,
            preprocessing and a fingerprint of the samples), so a changed dataset is recomputed.
        bands: band names, part of the key.
        compute: computes the statistics on a cache miss.

    Raises:
        BandMismatchError: a cached file holds statistics for other bands.
    """
    if cache_dir is None:
        return compute()
    path = statistics_cache_path(cache_dir, dataset_key, bands)
    if path.exists():
        data = json.loads(path.read_text())
        stats = BandStatistics.from_dict(data["statistics"])
        stats.check_bands(bands)
        return stats
    stats = compute()
    atomic_write_json(path, {"dataset": dataset_key, "statistics": stats.to_dict()}, indent=1)
    return stats
