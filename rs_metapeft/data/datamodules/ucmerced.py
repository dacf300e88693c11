"""UC Merced Land Use (21 RGB classes) via TorchGeo's ``UCMerced``."""

from __future__ import annotations

from typing import Any

from torchgeo.datasets import UCMerced

from .rgb_scenes import _RGBSceneDataModule

__all__ = ["UCMercedLongTailDataModule"]


class UCMercedLongTailDataModule(_RGBSceneDataModule):
    """UC Merced Land Use (21 classes, RGB, resized to 256 x 256 by TorchGeo).

    Args:
        root: where ``UCMerced_LandUse/Images`` and ``uc_merced-<split>.txt`` are.
        num_classes: 21 for the real data.
        bands: channel names (default ``[R, G, B]``).
        download: download the data if missing.
        **kwargs: :class:`LongTailDataModule` options (e.g. ``image_size: 64``).
    """

    torchgeo_class = UCMerced

    def __init__(self, root: str = "data/ucmerced", num_classes: int = 21,
                 bands: list[str] | None = None, download: bool = False, **kwargs: Any) -> None:
        super().__init__(root=root, num_classes=num_classes, bands=bands, download=download,
                         **kwargs)
