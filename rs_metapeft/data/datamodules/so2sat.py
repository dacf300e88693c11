"""So2Sat LCZ42 (HDF5; Sentinel-1 and Sentinel-2, 17 LCZs) via TorchGeo's ``So2Sat``.

The data is read by the real TorchGeo class (``download=True`` works for online users); a thin
subclass only adds the ``targets`` list that long-tail subsetting and class-aware sampling need,
read from the HDF5 labels without reading any image.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset, Subset
from torchgeo.datasets import So2Sat

from ...choices import check_choice
from ..splits import stratified_split
from .base import LongTailDataModule

__all__ = ["SO2SAT_BAND_NAMES", "So2SatLongTailDataModule"]

#: Band registry name of each So2Sat channel that is a physical band. Of Sentinel-1's eight
#: channels only the refined-Lee-filtered intensities (VH: S1_B5, VV: S1_B6) are backscatter;
#: the others are real/imaginary parts of the complex signal and covariance, which no
#: RGB-pretrained stem can map by wavelength or polarisation.
SO2SAT_BAND_NAMES = {
    "S1_B5": "VH",
    "S1_B6": "VV",
    **{b: b.removeprefix("S2_") for b in So2Sat.all_s2_band_names},
}
_SO2SAT_BY_REGISTRY = {v: k for k, v in SO2SAT_BAND_NAMES.items()}
#: TorchGeo's So2Sat versions (``So2Sat.versions``; a test keeps the two equal).
So2SatVersion = Literal["2", "3_random", "3_block", "3_culture_10"]


class _So2SatWithTargets(So2Sat):
    """So2Sat with ``targets`` read from the HDF5 one-hot labels (no image is read)."""

    @property
    def targets(self) -> list[int]:
        if not hasattr(self, "_targets"):
            import h5py

            with h5py.File(self.fn, "r") as f:
                self._targets = np.asarray(f["label"][:]).argmax(1).tolist()
        return self._targets


class So2SatLongTailDataModule(LongTailDataModule):
    """So2Sat LCZ42 via ``torchgeo.datasets.So2Sat``, long-tailed on demand.

    Versions ``"2"`` (``training.h5``, ``validation.h5``, ``testing.h5``) and the version-3
    splits (``random``, ``block``, ``culture_10``; ``<split>/training.h5``,
    ``<split>/testing.h5``). Version 3 has no validation file, so ``val_fraction`` of each class
    of the training file is held out (stratified, by ``seed``). LCZ42 is naturally long-tailed;
    ``imbalance_ratio`` subsamples further.

    Args:
        root: folder with the HDF5 files.
        bands: registry names (``VV``, ``VH``, ``B02`` ... ``B12``) or So2Sat names (``S1_B6``,
            ``S2_B04``); Sentinel-1 bands must come first, as So2Sat stacks them so.
        version: So2Sat version.
        val_fraction: hold-out share for version 3.
        checksum: verify the files' MD5 (slow on the 50 GB files; off by default).
        **kwargs: :class:`LongTailDataModule` options.
    """

    def __init__(
        self,
        root: str = "data/so2sat",
        bands: list[str] | None = None,
        num_classes: int = 17,
        version: So2SatVersion = "2",
        val_fraction: float = 0.1,
        checksum: bool = False,
        **kwargs: Any,
    ) -> None:
        s2_default = [b.removeprefix("S2_") for b in So2Sat.all_s2_band_names]
        names = list(bands or ["VH", "VV", *s2_default])
        so2sat_names = []
        for name in names:
            so = name if name in SO2SAT_BAND_NAMES else _SO2SAT_BY_REGISTRY.get(name)
            if so is None:
                raise ValueError(
                    f"data.bands: {name!r} is not a usable So2Sat band; choose from "
                    f"{', '.join(_SO2SAT_BY_REGISTRY)} "
                    f"(So2Sat names: {', '.join(SO2SAT_BAND_NAMES)})"
                )
            so2sat_names.append(so)
        is_s1 = [n.startswith("S1_") for n in so2sat_names]
        if is_s1 != sorted(is_s1, reverse=True):
            raise ValueError(
                f"data.bands {names}: So2Sat stacks Sentinel-1 channels before Sentinel-2; list "
                "VV/VH first"
            )
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        check_choice(version, So2SatVersion, "data.version")
        super().__init__(
            bands=[SO2SAT_BAND_NAMES[n] for n in so2sat_names], num_classes=num_classes, **kwargs
        )
        self.root, self.version = root, version
        self.val_fraction, self.checksum = val_fraction, checksum
        self.so2sat_bands = so2sat_names

    def dataset_key(self) -> str:
        """Dataset, root and version."""
        return f"{super().dataset_key()}:v{self.version}"

    def _open(self, split: str) -> _So2SatWithTargets:
        return _So2SatWithTargets(
            self.root, version=self.version, split=split, bands=self.so2sat_bands,
            checksum=self.checksum,
        )

    def make_dataset(self, split: str) -> Dataset:
        """The So2Sat split (``val`` is ``validation``, or a hold-out of training for v3)."""
        files = So2Sat.filenames_by_version[self.version]
        if split == "val" and "validation" in files:
            return self._open("validation")
        if split in ("train", "val") and "validation" not in files:
            full = self._open("train")
            parts = stratified_split(full.targets, [self.val_fraction], self.seed)
            return Subset(full, (parts.keep if split == "train" else parts.held[0]).tolist())
        return self._open(split)
