"""Training chips cut from a scene with TorchGeo's geospatial datasets and samplers.

A large multispectral or SAR raster (TorchGeo ``RasterDataset``) and labels -- a label raster such
as a land-cover map (``RasterDataset`` with ``is_image=False``) or labelled points / polygons in a
vector file (``VectorDataset``, rasterised on the image's grid) -- are intersected
(``IntersectionDataset``) and sampled with ``GridGeoSampler`` or ``RandomGeoSampler``. Each chip's
label is the class at its centre or the majority class among its labelled pixels, kept only when
that class covers at least ``purity`` of them. Only the label windows are read to build the index;
image windows are read when a chip is loaded. Such data is naturally long-tailed.

The split is spatial: the scene is cut into horizontal strips (train / val / test by
``split_fractions``, north to south), so no chip of one split overlaps another split's area.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from shapely.geometry import box
from torchgeo.datasets import NonGeoDataset, RasterDataset, VectorDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from ..choices import check_choice
from .folder import SPLITS, DataFileError, Split

__all__ = ["SceneChips", "chip_label"]

#: How a chip's class comes from its label window (``label_rule``).
LabelRule = Literal["centre", "majority"]
#: How chips are laid over the scene (``sampler``): a grid, or random windows.
ChipSampler = Literal["grid", "random"]


class _ImageRaster(RasterDataset):
    filename_glob = "*.tif"


class _LabelRaster(RasterDataset):
    filename_glob = "*.tif"
    is_image = False


def chip_label(
    mask: np.ndarray, rule: LabelRule = "majority", purity: float = 0.5,
    ignore: Sequence[int] = (0,),
) -> int | None:
    """The class of a chip from its label window, or ``None`` when it has none.

    Args:
        mask: (H, W) integer labels.
        rule: ``"centre"`` (the centre pixel's class) or ``"majority"``.
        purity: the chosen class must cover at least this share of the labelled pixels.
        ignore: values meaning "no label" (not counted).

    Example:
        >>> chip_label(np.array([[1, 1], [1, 2]]), purity=0.7)
        1
        >>> chip_label(np.array([[1, 1], [2, 2]]), purity=0.7) is None
        True
    """
    check_choice(rule, LabelRule, "label rule")
    valid = mask[~np.isin(mask, list(ignore))]
    if valid.size == 0:
        return None
    values, counts = np.unique(valid, return_counts=True)
    if rule == "centre":
        label = int(mask[mask.shape[0] // 2, mask.shape[1] // 2])
        if label in ignore:
            return None
    else:
        label = int(values[np.argmax(counts)])
    share = counts[values == label].sum() / valid.size
    return label if share >= purity else None


class SceneChips(NonGeoDataset):
    """Chip-classification samples cut from a georeferenced scene.

    Args:
        image: the scene raster(s): a GeoTIFF file or a folder of them.
        labels: a label raster (GeoTIFF) or a vector file (GeoJSON, GeoPackage, shapefile).
        label_field: for vector labels, the property holding the integer class.
        split: ``"train"``, ``"val"`` or ``"test"`` (a horizontal strip of the scene).
        split_fractions: heights of the train / val / test strips (north to south).
        chip_size: chip side in pixels.
        sampler: ``"grid"`` (``GridGeoSampler``) or ``"random"`` (``RandomGeoSampler``).
        stride: grid stride in pixels (default ``chip_size``: no overlap).
        length: number of random chips drawn per split.
        label_rule: ``"centre"`` or ``"majority"``.
        purity: minimum share of the chip's labelled pixels in its class.
        classes: label values to keep, in label order (default: all found, sorted).
        ignore_values: label values meaning "unlabelled".
        seed: seed of the random sampler.
    """

    def __init__(
        self,
        image: str | os.PathLike,
        labels: str | os.PathLike,
        label_field: str = "class",
        split: Split = "train",
        split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
        chip_size: int = 32,
        sampler: ChipSampler = "grid",
        stride: int | None = None,
        length: int = 500,
        label_rule: LabelRule = "majority",
        purity: float = 0.5,
        classes: Sequence[int] | None = None,
        ignore_values: Sequence[int] = (0,),
        seed: int = 0,
    ) -> None:
        for path, what in ((image, "data.image"), (labels, "data.labels")):
            if not os.path.exists(path):
                raise DataFileError(f"{what}: {path} does not exist; check the path")
        check_choice(split, Split, "split")
        check_choice(sampler, ChipSampler, "data.chip_sampler")
        self.image = _ImageRaster(paths=str(image))
        if str(labels).lower().endswith((".tif", ".tiff")):
            self.labels: Any = _LabelRaster(
                paths=str(labels), crs=self.image.crs, res=self.image.res
            )
        else:
            self.labels = VectorDataset(
                paths=str(labels), crs=self.image.crs, res=self.image.res, label_name=label_field
            )
        joint = self.image & self.labels  # IntersectionDataset: where both have data
        # A point layer's extent is the bounding box of its points, narrower than the area they
        # label, so vector labels are sampled over the image (windows without points are dropped).
        area = joint if isinstance(self.labels, _LabelRaster) else self.image
        roi = _strip(area.bounds, split_fractions, SPLITS.index(split))
        if sampler == "grid":
            geo_sampler: Any = GridGeoSampler(area, chip_size, stride or chip_size, roi=roi)
        else:
            geo_sampler = RandomGeoSampler(
                area, chip_size, length, roi=roi, generator=torch.Generator().manual_seed(seed)
            )
        found: list[tuple[Any, int]] = []
        for query in geo_sampler:
            try:
                mask = self.labels[query]["mask"].numpy()
            except IndexError:  # a window with no vector feature at all
                continue
            label = chip_label(mask, label_rule, purity, ignore_values)
            if label is not None:
                found.append((query, label))
        values = list(classes) if classes is not None else sorted({v for _, v in found})
        self.class_values = values
        self.classes = [str(v) for v in values]
        self.samples = [(q, values.index(v)) for q, v in found if v in values]
        if not self.samples:
            raise DataFileError(
                f"no {split} chip of {chip_size} px passed the label rule {label_rule!r} with "
                f"purity {purity} in {labels}; lower data.purity or data.chip_size"
            )
        self.targets = [y for _, y in self.samples]

    @property
    def data_crs(self) -> str | None:
        """The scene's CRS (``"EPSG:32632"``), recorded in checkpoints to check scenes against."""
        crs = self.image.crs
        return crs.to_string() if crs is not None else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        query, label = self.samples[index]
        return {"image": self.image[query]["image"].float(), "label": torch.tensor(label)}


def _strip(bounds: tuple[slice, slice, slice], fractions: Sequence[float], which: int):
    """The ``which``-th horizontal strip (north first) of the bounds, as a shapely box."""
    x, y, _ = bounds
    f = np.asarray(fractions, dtype=np.float64)
    if len(f) != 3 or (f < 0).any() or f.sum() <= 0:
        raise ValueError(
            f"split_fractions must be three non-negative numbers, got {list(fractions)}"
        )
    edges = np.concatenate([[0.0], np.cumsum(f / f.sum())])
    top = y.stop - edges[which] * (y.stop - y.start)
    bottom = y.stop - edges[which + 1] * (y.stop - y.start)
    return box(x.start, bottom, x.stop, top)
