"""A folder of GeoTIFF chips, ``root/<Class>/*.tif``, with split lists (the synthetic SAR twin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..folder import ChipFolder
from .base import LongTailDataModule

__all__ = ["ChipFolderDataModule"]


class ChipFolderDataModule(LongTailDataModule):
    """A folder of GeoTIFF chips, ``root/<Class>/*.tif`` (see :class:`ChipFolder`).

    Args:
        root: dataset folder.
        bands: band names in file order.
        num_classes: number of class folders.
        **kwargs: :class:`LongTailDataModule` options.
    """

    def __init__(self, root: str, bands: list[str], num_classes: int, **kwargs: Any) -> None:
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)
        self.root = root

    def make_dataset(self, split: str) -> Dataset:
        """Chips of one split."""
        return ChipFolder(Path(self.root), split=split, bands=self.bands)
