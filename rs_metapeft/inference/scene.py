"""Classify a large GeoTIFF scene chip by chip into class-map and confidence GeoTIFFs.

The scene is read through TorchGeo's :class:`~torchgeo.datasets.RasterDataset` on its own CRS
and resolution (no resampling) and tiled with :class:`~torchgeo.samplers.GridGeoSampler`. Each
chip's class and confidence paint the chip's pixels; where chips overlap (``stride`` smaller than
the chip), the more confident chip wins. Outputs share the scene's CRS, transform and size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.crs import CRS
from torch.utils.data import DataLoader
from torchgeo.datasets import RasterDataset, stack_samples
from torchgeo.samplers import GridGeoSampler
from tqdm.auto import tqdm

from ..bands import check_compatible
from ..io import atomic_path
from ..tasks import MetaPEFTTask

__all__ = ["predict_scene"]

#: Class-map value of pixels no chip covered.
NODATA_CLASS = -1


class _Scene(RasterDataset):
    """One GeoTIFF read as it is (all its bands, float32)."""

    filename_glob = "*"
    is_image = True

    @property
    def dtype(self) -> torch.dtype:  # noqa: D102 - the model takes float32
        return torch.float32


def _check_scene(task: MetaPEFTTask, scene: Path, crs: str | None, chip: int) -> dict:
    """Read the scene's header and refuse it before any work if it cannot fit the model."""
    if not scene.is_file():
        raise FileNotFoundError(f"scene {scene} does not exist")
    with rasterio.open(scene) as src:
        profile = src.profile
        names = list(src.descriptions)
        check_compatible(task.model.bands, names if all(names) else src.count, data=str(scene),
                         fix="give a scene with exactly these bands in this order")
        if src.crs is None:
            raise ValueError(
                f"{scene} has no CRS; georeference it first (e.g. gdal_translate -a_srs)"
            )
        if crs is not None and CRS.from_user_input(crs) != src.crs:
            raise ValueError(
                f"{scene} is in {src.crs.to_string()} but {CRS.from_user_input(crs).to_string()} "
                "was asked for; reproject the scene (gdalwarp -t_srs) or drop the crs argument"
            )
        if src.width < chip or src.height < chip:
            raise ValueError(
                f"{scene} is {src.width}x{src.height} pixels, smaller than the model's "
                f"{chip}x{chip} chip"
            )
    return profile


def _outputs(scene: Path, output: str | os.PathLike | None) -> tuple[Path, Path]:
    base = Path(output) if output is not None else scene.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    return (base.with_name(base.name + "_classes.tif"),
            base.with_name(base.name + "_confidence.tif"))


def _write(path: Path, array: np.ndarray, profile: dict, nodata, description: str,
           tags: dict | None = None) -> None:
    out = {k: profile[k] for k in ("crs", "transform", "width", "height")}
    out.update(driver="GTiff", count=1, dtype=array.dtype.name, nodata=nodata, compress="deflate")
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **out) as dst:
        dst.write(array, 1)
        dst.set_band_description(1, description)
        if tags:
            dst.update_tags(**tags)


@torch.no_grad()
def predict_scene(task: MetaPEFTTask, scene: str | os.PathLike,
                  output: str | os.PathLike | None = None, stride: int | None = None,
                  batch_size: int = 64, crs: str | None = None,
                  progress: bool = True) -> tuple[Path, Path]:
    """Write a class-map GeoTIFF and a confidence GeoTIFF for a scene.

    Args:
        task: a trained task (see :func:`~rs_metapeft.inference.load_task`).
        scene: a GeoTIFF with the model's bands, in order.
        output: output prefix; writes ``PREFIX_classes.tif`` (int16 class index, -1 where no
            chip reached; class names in the ``classes`` tag) and ``PREFIX_confidence.tif``
            (float32 top-class probability). Default: next to the scene.
        stride: pixels between chip origins (default: the model's chip size, no overlap).
        batch_size: chips per forward pass.
        crs: the CRS the scene must be in (e.g. ``"EPSG:32632"``); a scene in another CRS is
            refused before any work.
        progress: show a progress bar.

    Returns:
        The class-map and confidence paths.

    Raises:
        BandMismatchError: the scene's band count or band names differ from the model's.
        ValueError: no CRS, another CRS than ``crs``, or a scene smaller than one chip.

    """
    scene = Path(scene)
    chip = int(task.hparams.img_size)
    profile = _check_scene(task, scene, crs, chip)
    transform = profile["transform"]
    res = (abs(transform.a), abs(transform.e))
    dataset = _Scene(paths=[str(scene)], crs=profile["crs"], res=res)
    sampler = GridGeoSampler(dataset, size=chip, stride=stride or chip)
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch_size, collate_fn=stack_samples)
    height, width = profile["height"], profile["width"]
    classes = np.full((height, width), NODATA_CLASS, np.int16)
    confidence = np.full((height, width), np.nan, np.float32)
    best = np.full((height, width), -1.0, np.float32)
    for batch in tqdm(loader, desc="predict scene", unit="batch", disable=not progress):
        probs = task(batch["image"].to(task.device)).softmax(1).cpu()
        top, label = probs.max(1)
        for t, p, k in zip(batch["transform"], top.tolist(), label.tolist(), strict=True):
            # Chip origin in scene pixels, from the chip's own affine transform (x0, y0).
            col = round((float(t[2]) - transform.c) / transform.a)
            row = round((float(t[5]) - transform.f) / transform.e)
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + chip, height), min(col + chip, width)
            if r1 <= r0 or c1 <= c0:
                continue
            better = best[r0:r1, c0:c1] < p
            best[r0:r1, c0:c1][better] = p
            classes[r0:r1, c0:c1][better] = k
            confidence[r0:r1, c0:c1][better] = p
    class_path, confidence_path = _outputs(scene, output)
    names = {"classes": json.dumps(list(task.class_names))}
    _write(class_path, classes, profile, NODATA_CLASS, "class index", names)
    _write(confidence_path, confidence, profile, float("nan"), "confidence", names)
    return class_path, confidence_path
