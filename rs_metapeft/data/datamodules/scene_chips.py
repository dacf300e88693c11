"""Chip classification from one georeferenced scene, split into spatial strips."""

from __future__ import annotations

import os
from typing import Any

from torch.utils.data import Dataset

from ..scene import SceneChips
from .base import LongTailDataModule

__all__ = ["SceneChipsDataModule"]


class SceneChipsDataModule(LongTailDataModule):
    """Chip classification from one scene (see :class:`SceneChips`), split into spatial strips.

    Args:
        image: scene GeoTIFF (or folder).
        labels: label raster or vector file.
        bands: band names of the scene in file order.
        num_classes: number of classes kept.
        classes: label values to keep (default: all found in the training strip).
        chip_options: further :class:`SceneChips` options (``chip_size``, ``sampler``,
            ``stride``, ``length``, ``label_rule``, ``purity``, ``label_field``,
            ``split_fractions``, ``ignore_values``).
        **kwargs: :class:`LongTailDataModule` options.
    """

    def __init__(
        self,
        image: str,
        labels: str,
        bands: list[str],
        num_classes: int,
        classes: list[int] | None = None,
        chip_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)
        self.image, self.labels = image, labels
        self.classes = classes
        self.chip_options = dict(chip_options or {})

    def dataset_key(self) -> str:
        """Scene, labels and chip options."""
        paths = f"{os.path.abspath(self.image)}:{os.path.abspath(self.labels)}"
        return f"SceneChips:{paths}:{sorted(self.chip_options.items())}"

    def make_dataset(self, split: str) -> Dataset:
        """The chips of one strip; val/test use the training strip's class values."""
        if self.classes is None and split != "train":
            # Label indices must mean the same in every split: take the training strip's classes
            # (indexing it reads only label windows).
            self.make_dataset("train")
        ds = SceneChips(self.image, self.labels, split=split, classes=self.classes,
                        seed=self.seed, **self.chip_options)
        if self.classes is None:
            self.classes = ds.class_values
        return ds
