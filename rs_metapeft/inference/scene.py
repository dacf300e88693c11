"""Classify a large GeoTIFF scene chip by chip into class-map and confidence GeoTIFFs.

A multi-label model writes a per-label score GeoTIFF and a label-presence GeoTIFF instead.

The scene is read through TorchGeo's :class:`~torchgeo.datasets.RasterDataset` on its own CRS
and resolution (no resampling) and tiled with :class:`~torchgeo.samplers.GridGeoSampler` into
chips of the training chips' footprint on the ground (:func:`chip_footprint`: the chip size and
ground resolution the checkpoint records), each resized to the model's input size as training
resized its chips. Each chip's class and confidence paint the chip's pixels; where chips overlap
(``stride`` smaller than the chip), the more confident chip wins. A multi-label model's chip
scores paint its pixels likewise, averaged where chips overlap, and a label is present where its
score reaches the label's threshold. Outputs share the scene's CRS, transform and size.

Nodata (the scene's declared value, or the one the model's training data declared; see
:mod:`rs_metapeft.inference.nodata`) is filled with the model's band means as in training; a
pixel whose every band is nodata gets class -1 and confidence 0, and a tile with nothing else is
not classified (multi-label: no score and no presence there). A scene in another CRS than the
model's training chips is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
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
from ..io import atomic_path, refuse_existing
from ..tasks import MetaPEFTTask
from .chips import resize_to_model
from .nodata import masked_pixels, model_input, nodata_value, recorded_preprocessing

__all__ = ["NODATA_CLASS", "NODATA_PRESENCE", "chip_footprint", "predict_scene",
           "scene_outputs"]

#: Class-map value of pixels no chip covered, or whose every band is nodata.
NODATA_CLASS = -1
#: Label-presence value (multi-label) of pixels no chip covered, or whose every band is nodata.
NODATA_PRESENCE = 255


class _Scene(RasterDataset):
    """One GeoTIFF read as it is (all its bands, float32)."""

    filename_glob = "*"
    is_image = True

    @property
    def dtype(self) -> torch.dtype:  # noqa: D102 - the model takes float32
        return torch.float32


def _expected_crs(task: MetaPEFTTask, crs: str | None) -> tuple[CRS | None, str]:
    """The CRS a scene must be in, and where that requirement comes from."""
    if crs is not None:
        return CRS.from_user_input(crs), "was asked for"
    recorded = (getattr(task, "data_info", None) or {}).get("crs")
    if recorded:
        return CRS.from_user_input(recorded), "is the CRS of the model's training chips"
    return None, ""


def chip_footprint(task: MetaPEFTTask, scene_res: tuple[float, float]) -> tuple[int, int]:
    """Scene pixels (rows, columns) one chip covers: the training chips' ground footprint.

    The checkpoint records the training chips' size in pixels and, for georeferenced chips,
    their ground resolution (``data_info``'s ``chip_size`` and ``resolution``). A scene at
    another resolution gets as many of its pixels as cover the same ground. Checkpoints that do
    not record a chip size fall back to the model's input size.

    Args:
        task: a trained task.
        scene_res: the scene's pixel size ``(x, y)`` in CRS units.

    Example:
        >>> from types import SimpleNamespace
        >>> task = SimpleNamespace(data_info={"chip_size": [32, 32], "resolution": [10.0, 10.0]},
        ...                        hparams=SimpleNamespace(img_size=64))
        >>> chip_footprint(task, (10.0, 10.0)), chip_footprint(task, (20.0, 20.0))
        ((32, 32), (16, 16))
    """
    info = getattr(task, "data_info", None) or {}
    size = info.get("chip_size")
    if not size:
        side = int(task.hparams.img_size)
        return side, side
    rows, cols = int(size[0]), int(size[-1])
    res = info.get("resolution")
    if res and all(scene_res):
        rows = max(1, round(rows * float(res[-1]) / scene_res[1]))
        cols = max(1, round(cols * float(res[0]) / scene_res[0]))
    return rows, cols


def _check_scene(task: MetaPEFTTask, scene: Path, crs: str | None,
                 chip: tuple[int, int] | None) -> dict:
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
        expected, why = _expected_crs(task, crs)
        if expected is not None and expected != src.crs:
            target = expected.to_string()
            raise ValueError(
                f"{scene} is in {src.crs.to_string()} but {target} {why}; reproject the scene "
                f"(gdalwarp -t_srs {target}), or pass --crs {src.crs.to_string()} (crs=...) to "
                "accept its CRS"
            )
        rows, cols = chip or chip_footprint(task, (abs(src.res[0]), abs(src.res[1])))
        if src.width < cols or src.height < rows:
            raise ValueError(
                f"{scene} is {src.width}x{src.height} pixels, smaller than one chip of the "
                f"model's training chips' footprint ({cols}x{rows} of its pixels)"
            )
    return profile


def scene_outputs(scene: str | os.PathLike, output: str | os.PathLike | None = None,
                  multilabel: bool = False) -> tuple[Path, Path]:
    """The two paths :func:`predict_scene` writes for ``scene``.

    Args:
        scene: the scene GeoTIFF.
        output: the outputs' prefix (default: the scene's path without its suffix).
        multilabel: the model is multi-label.

    Returns:
        ``PREFIX_classes.tif`` and ``PREFIX_confidence.tif``; for a multi-label model
        ``PREFIX_labels.tif`` and ``PREFIX_scores.tif``.
    """
    base = Path(output) if output is not None else Path(scene).with_suffix("")
    names = ("labels", "scores") if multilabel else ("classes", "confidence")
    return tuple(base.with_name(f"{base.name}_{name}.tif") for name in names)


def _write(path: Path, array: np.ndarray, profile: dict, nodata, descriptions: Sequence[str],
           tags: dict | None = None, band_tags: Sequence[dict] | None = None) -> None:
    """Write a (H, W) or (bands, H, W) array on the scene's grid, one description per band."""
    array = array[None] if array.ndim == 2 else array
    out = {k: profile[k] for k in ("crs", "transform", "width", "height")}
    out.update(driver="GTiff", count=len(array), dtype=array.dtype.name, nodata=nodata,
               compress="deflate")
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **out) as dst:
        dst.write(array)
        for band, description in enumerate(descriptions, start=1):
            dst.set_band_description(band, description)
        if tags:
            dst.update_tags(**tags)
        for band, values in enumerate(band_tags or (), start=1):
            dst.update_tags(band, **values)


def _scored_chips(task: MetaPEFTTask, scene: Path, profile: dict, stride: int | None,
                  batch_size: int, value: float | None, progress: bool
                  ) -> Iterator[tuple[tuple[slice, slice], np.ndarray, torch.Tensor | None]]:
    """Tile the scene and score its chips: ``(window, masked, scores)`` per chip in the scene.

    ``window`` is the chip's (rows, columns) slice of the scene, ``masked`` its pixels whose
    every band is nodata, ``scores`` the model's class probabilities (multi-label: per-label
    sigmoid scores), ``None`` for a chip with nothing but nodata (not classified).
    """
    size = int(task.hparams.img_size)
    fill = task.model.normalizer.mean.cpu()
    preprocessing = recorded_preprocessing(task)
    transform = profile["transform"]
    res = (abs(transform.a), abs(transform.e))
    rows_per_chip, cols_per_chip = chip_footprint(task, res)
    dataset = _Scene(paths=[str(scene)], crs=profile["crs"], res=res)
    sampler = GridGeoSampler(dataset, size=(rows_per_chip, cols_per_chip),
                             stride=stride or (rows_per_chip, cols_per_chip))
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch_size, collate_fn=stack_samples)
    height, width = profile["height"], profile["width"]
    for batch in tqdm(loader, desc="predict scene", unit="batch", disable=not progress):
        image = batch["image"]
        mask = masked_pixels(image, value)
        keep = ~mask.flatten(1).all(1)  # tiles with nothing but nodata are not classified
        scores: list[torch.Tensor | None] = [None] * len(image)
        if keep.any():
            x = resize_to_model(model_input(image[keep], value, fill, preprocessing), size)
            for i, p in zip(keep.nonzero().flatten().tolist(), task.scores(x.to(task.device)).cpu(),
                            strict=True):
                scores[i] = p
        for t, m, p in zip(batch["transform"], mask.numpy(), scores, strict=True):
            # Chip origin in scene pixels, from the chip's own affine transform (x0, y0).
            col = round((float(t[2]) - transform.c) / transform.a)
            row = round((float(t[5]) - transform.f) / transform.e)
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + rows_per_chip, height), min(col + cols_per_chip, width)
            if r1 > r0 and c1 > c0:
                yield (slice(r0, r1), slice(c0, c1)), m[r0 - row:r1 - row, c0 - col:c1 - col], p


def _class_map(chips, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Class map and confidence of a single-label model: the most confident chip wins."""
    classes = np.full((height, width), NODATA_CLASS, np.int16)
    confidence = np.full((height, width), np.nan, np.float32)
    best = np.full((height, width), -1.0, np.float32)
    masked = np.zeros((height, width), bool)
    for window, m, p in chips:
        masked[window] |= m
        if p is None:
            continue
        top, label = float(p.max()), int(p.argmax())
        better = (best[window] < top) & ~m
        best[window][better] = top
        classes[window][better] = label
        confidence[window][better] = top
    classes[masked] = NODATA_CLASS
    confidence[masked] = 0.0
    return classes, confidence


def _label_maps(chips, thresholds: np.ndarray, height: int, width: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Label presence and scores of a multi-label model: chip scores averaged where chips overlap.

    Returns:
        ``(presence, scores)``: (labels, H, W) uint8 (1 present, 0 absent,
        :data:`NODATA_PRESENCE` where no score) and float32 scores (NaN where no chip reached
        or every band is nodata).
    """
    scores = np.zeros((len(thresholds), height, width), np.float32)
    count = np.zeros((height, width), np.int32)
    masked = np.zeros((height, width), bool)
    for window, m, p in chips:
        masked[window] |= m
        if p is None:
            continue
        scores[(slice(None), *window)] += p.numpy()[:, None, None]
        count[window] += 1
    scored = (count > 0) & ~masked
    np.divide(scores, count, out=scores, where=scored)
    scores[:, ~scored] = np.nan
    presence = np.full(scores.shape, NODATA_PRESENCE, np.uint8)
    for k, threshold in enumerate(thresholds):  # one label at a time: no scene-sized temporaries
        presence[k][scored] = scores[k][scored] >= threshold
    return presence, scores


@torch.no_grad()
def predict_scene(task: MetaPEFTTask, scene: str | os.PathLike,
                  output: str | os.PathLike | None = None, stride: int | None = None,
                  batch_size: int = 64, crs: str | None = None,
                  progress: bool = True, nodata: float | None = None,
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write a class-map GeoTIFF and a confidence GeoTIFF for a scene (multi-label: see below).

    A multi-label model writes ``PREFIX_labels.tif`` and ``PREFIX_scores.tif`` instead, one
    band per label, each band described by its label's name (band tag ``threshold``; tags
    ``labels`` and ``thresholds`` list them all): the scores are the chips' sigmoid scores
    (float32; averaged where chips overlap; NaN, the declared nodata, where no chip reached or
    every band is nodata); presence is uint8, 1 where the label's score reaches its threshold
    (chosen on the validation split, stored in the checkpoint), 0 where not, and
    :data:`NODATA_PRESENCE` (255, the declared nodata) where there is no score. One band per
    label rather than a bitmask: each label reads on its own in a GIS, for any number of labels.

    Args:
        task: a trained task (see :func:`~rs_metapeft.inference.load_task`).
        scene: a GeoTIFF with the model's bands, in order.
        output: output prefix; writes ``PREFIX_classes.tif`` (int16 class index, -1 where no
            chip reached or every band is nodata; class names in the ``classes`` tag) and
            ``PREFIX_confidence.tif`` (float32 top-class probability; 0 on nodata pixels, NaN
            where no chip reached). Default: next to the scene.
        stride: scene pixels between chip origins (default: the chip's footprint, no
            overlap). A chip covers the training chips' ground footprint
            (:func:`chip_footprint`) and is resized to the model's input size.
        batch_size: chips per forward pass.
        crs: the CRS the scene must be in (e.g. ``"EPSG:32632"``). Default: the CRS of the
            model's training chips where the checkpoint records one. A scene in another CRS
            is refused before any work.
        progress: show a progress bar.
        nodata: nodata value of the scene, overriding its own and the model's recorded one.
        overwrite: replace existing outputs.

    Returns:
        The class-map and confidence paths (multi-label: the presence and score paths).

    Raises:
        FileExistsError: an output exists and ``overwrite`` is off (checked before any work).
        BandMismatchError: the scene's band count or band names differ from the model's.
        ValueError: no CRS, another CRS than required, or a scene smaller than one chip.

    """
    scene = Path(scene)
    multilabel = bool(getattr(task, "multilabel", False))
    first, second = scene_outputs(scene, output, multilabel)
    refuse_existing([first, second], overwrite)
    profile = _check_scene(task, scene, crs, None)
    value = nodata_value(task, profile.get("nodata"), nodata)
    chips = _scored_chips(task, scene, profile, stride, batch_size, value, progress)
    height, width = profile["height"], profile["width"]
    names = list(task.class_names)
    if not multilabel:
        classes, confidence = _class_map(chips, height, width)
        tags = {"classes": json.dumps(names)}
        _write(first, classes, profile, NODATA_CLASS, ["class index"], tags)
        _write(second, confidence, profile, float("nan"), ["confidence"], tags)
        return first, second
    thresholds = task.thresholds.float().cpu().numpy()
    presence, scores = _label_maps(chips, thresholds, height, width)
    tags = {"labels": json.dumps(names), "thresholds": json.dumps(thresholds.tolist())}
    per_band = [{"threshold": str(float(t))} for t in thresholds]
    _write(first, presence, profile, NODATA_PRESENCE, names, tags, per_band)
    _write(second, scores, profile, float("nan"), names, tags, per_band)
    return first, second
