"""What the RGB scene datamodules share: one TorchGeo class, bands fixed to R, G, B."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset
from torchgeo.datasets import RESISC45

from .base import LongTailDataModule

__all__: list[str] = []


class _RGBSceneDataModule(LongTailDataModule):
    """Shared part of the RGB scene datasets (one TorchGeo class, bands fixed to R, G, B)."""

    torchgeo_class: type = RESISC45

    def __init__(self, root: str, num_classes: int, bands: list[str] | None = None,
                 download: bool = False, **kwargs: Any) -> None:
        bands = list(bands or ["R", "G", "B"])
        if len(bands) != 3:
            raise ValueError(
                f"data.bands: {self.torchgeo_class.__name__} images are RGB; give three names "
                f"in R, G, B order, not {bands}"
            )
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)
        self.root, self.download = root, download

    def prepare_data(self) -> None:
        """Download when asked to (only on one process)."""
        if self.download:
            self.torchgeo_class(self.root, split="train", download=True)

    def make_dataset(self, split: str) -> Dataset:
        """The split, as the TorchGeo class reads it (RGB, 0-255 float)."""
        return self.torchgeo_class(self.root, split=split, download=self.download)
