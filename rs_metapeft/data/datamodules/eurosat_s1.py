"""EuroSAT-SAR (Sentinel-1 VV/VH, 10 classes) via TorchGeo's ``CopernicusBenchEuroSATS1``."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset
from torchgeo.datasets import CopernicusBenchEuroSATS1

from .base import LongTailDataModule

__all__ = ["EuroSATS1LongTailDataModule"]


class _EuroSATS1WithTargets(CopernicusBenchEuroSATS1):
    """EuroSAT-S1 with ``targets`` from the split file names (``<Class>_<n>.jpg``)."""

    @property
    def targets(self) -> list[int]:
        return [self.classes.index(str(f).split("_")[0]) for f in self.files]


class EuroSATS1LongTailDataModule(LongTailDataModule):
    """EuroSAT-SAR (Sentinel-1 VV/VH, 10 classes) via TorchGeo's ``CopernicusBenchEuroSATS1``.

    TorchGeo 0.10 has no ``EuroSAT`` band option for Sentinel-1; the SAR twin of EuroSAT ships as
    Copernicus-Bench's EuroSAT-S1 (``eurosat_s1/all_imgs/<Class>/<Class>_<n>.tif``).

    Args:
        root: where ``eurosat_s1/`` (or ``eurosat_s1.zip``) is, or goes with ``download=True``.
        bands: ``[VV, VH]`` or one of them.
        download: download the data if missing.
        **kwargs: :class:`LongTailDataModule` options.
    """

    def __init__(
        self,
        root: str = "data/eurosat_s1",
        bands: list[str] | None = None,
        num_classes: int = 10,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        bands = list(bands or CopernicusBenchEuroSATS1.all_bands)
        unknown = [b for b in bands if b not in CopernicusBenchEuroSATS1.all_bands]
        if unknown:
            raise ValueError(f"data.bands: {unknown} are not EuroSAT-S1 bands; choose from VV, VH")
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)
        self.root, self.download = root, download

    def prepare_data(self) -> None:
        """Download when asked to (only on one process)."""
        if self.download:
            CopernicusBenchEuroSATS1(self.root, split="train", download=True)

    def make_dataset(self, split: str) -> Dataset:
        """The EuroSAT-S1 split."""
        return _EuroSATS1WithTargets(
            self.root, split=split, bands=self.bands, download=self.download
        )
