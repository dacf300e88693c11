"""TorchGeo's EuroSAT (Sentinel-2, 13 bands, 10 classes) as a long-tailed datamodule."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset
from torchgeo.datasets import EuroSAT

from .base import LongTailDataModule

__all__ = ["EuroSATLongTailDataModule"]


class EuroSATLongTailDataModule(LongTailDataModule):
    """TorchGeo's EuroSAT (Sentinel-2, 10 classes), long-tailed on demand.

    Args:
        root: where the EuroSAT files are (or go, with ``download=True``).
        bands: any subset of EuroSAT's 13 bands, e.g. ``[B04, B03, B02]``.
        download: download the data if missing (needs the internet).
        **kwargs: :class:`LongTailDataModule` options.
    """

    def __init__(
        self,
        root: str = "data/eurosat",
        bands: list[str] | None = None,
        num_classes: int = 10,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        bands = list(bands or EuroSAT.all_band_names)
        unknown = [b for b in bands if b not in EuroSAT.all_band_names]
        if unknown:
            raise ValueError(
                f"data.bands: {unknown} are not EuroSAT bands; choose from "
                f"{', '.join(EuroSAT.all_band_names)}"
            )
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)
        self.root = root
        self.download = download

    def prepare_data(self) -> None:
        """Download EuroSAT when asked to (only on one process)."""
        if self.download:
            EuroSAT(self.root, split="train", bands=self.bands, download=True)

    def make_dataset(self, split: str) -> Dataset:
        """EuroSAT split with the requested bands."""
        return EuroSAT(self.root, split=split, bands=self.bands, download=self.download)
