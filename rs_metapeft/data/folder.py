"""Chip-folder dataset: ``root/<Class>/*.tif`` GeoTIFF chips read with rasterio."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioIOError
from torchgeo.datasets import NonGeoDataset

__all__ = ["ChipFolder", "DataFileError"]


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and what to do."""


class ChipFolder(NonGeoDataset):
    """Classification chips stored as ``root/<Class>/<name>.tif``, one class per folder.

    Split membership comes from ``root/split-<split>.txt`` (one ``<Class>/<name>.tif`` per line);
    without that file every chip belongs to the split. Samples are TorchGeo-style dicts with
    ``image`` (float32, C x H x W) and ``label``.

    Args:
        root: dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        bands: band names in file order; the files must have exactly this many bands.
        transforms: optional callable applied to each sample dict.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        bands: Sequence[str] = ("VV", "VH"),
        transforms: Callable[[dict], dict] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFileError(f"dataset root {self.root} does not exist; check data.root")
        self.split = split
        self.bands = tuple(bands)
        self.transforms = transforms
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise DataFileError(f"no class folders under {self.root}; expected root/<Class>/*.tif")
        class_to_idx = {c: i for i, c in enumerate(self.classes)}
        split_file = self.root / f"split-{split}.txt"
        if split_file.exists():
            rels = [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
        else:
            rels = sorted(str(p.relative_to(self.root)) for p in self.root.glob("*/*.tif"))
        self.samples: list[tuple[Path, int]] = []
        for rel in rels:
            cls = Path(rel).parts[0]
            if cls not in class_to_idx:
                raise DataFileError(
                    f"{split_file}: {rel!r} names class {cls!r}, which has no folder in {self.root}"
                )
            self.samples.append((self.root / rel, class_to_idx[cls]))
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, label = self.samples[index]
        try:
            with rasterio.open(path) as src:
                array = src.read().astype(np.float32)
        except RasterioIOError as err:
            raise DataFileError(f"cannot read {path}: {err}. Replace or remove the file.") from err
        if array.shape[0] != len(self.bands):
            raise DataFileError(
                f"{path} has {array.shape[0]} bands but data.bands lists {len(self.bands)} "
                f"({', '.join(self.bands)}); fix data.bands or the file"
            )
        sample = {"image": torch.from_numpy(array), "label": torch.tensor(label)}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample
