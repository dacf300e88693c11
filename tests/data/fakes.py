"""Tiny fake datasets in the real on-disk formats TorchGeo reads (importable by any test).

Each ``make_fake_*`` writes a few images with the real file names, dtypes, band counts, folder
layout and split files of one dataset, and returns the root to pass to the TorchGeo class (and to
our datamodule). Pixel values carry a class-dependent offset so a model could learn them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

from rs_metapeft.data.bigearthnet import (
    MultiLabelSpec,
    generate_bigearthnet_like,
    generate_bigearthnet_v2_like,
)
from rs_metapeft.data.synthetic import SyntheticSpec, generate_eurosat_like

__all__ = [
    "make_fake_bigearthnet",
    "make_fake_eurosat",
    "make_fake_dual_pol_folder",
    "make_fake_eurosat_s1",
    "make_fake_geotiff_folder",
    "make_fake_resisc45",
    "make_fake_sar_ships",
    "make_fake_scene",
    "make_fake_so2sat",
    "make_fake_ucmerced",
    "write_geotiff",
]

SPLITS = ("train", "val", "test")


def write_geotiff(
    path: str | os.PathLike,
    data: np.ndarray,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    pixel_size: float = 10.0,
    epsg: int = 32632,
) -> Path:
    """Write a (C, H, W) array as a georeferenced GeoTIFF, with band descriptions if given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = data.shape
    profile = dict(
        driver="GTiff", height=height, width=width, count=count, dtype=data.dtype.name,
        crs=CRS.from_epsg(epsg), transform=from_origin(*origin, pixel_size, pixel_size),
    )
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(band_names or (), start=1):
            dst.set_band_description(i, name)
    return path


def _per_class(counts: int | Sequence[int], num_classes: int) -> list[int]:
    return [counts] * num_classes if isinstance(counts, int) else list(counts)


def make_fake_eurosat(root: str | os.PathLike, num_classes: int = 4, per_class: int = 6) -> Path:
    """EuroSAT (13-band uint16 GeoTIFF) through the project's own EuroSAT-layout generator."""
    spec = SyntheticSpec(num_classes, 1.0, per_class, 2, 2, 16, 0)
    return generate_eurosat_like(root, spec)


def make_fake_bigearthnet(root: str | os.PathLike, num_train: int = 12, num_val: int = 4,
                          num_test: int = 4, patch_size: int = 12, seed: int = 0,
                          version: int = 1) -> Path:
    """BigEarthNet through the project's own BigEarthNet-layout generators; every label is in
    every split. Version 1: split CSVs, S1 and S2 patch folders of per-band GeoTIFFs and label
    JSON; version 2: metadata.parquet, S1, S2 and reference-map folders (the same patches)."""
    spec = MultiLabelSpec(num_train, num_val, num_test, patch_size=patch_size, seed=seed)
    generate = {1: generate_bigearthnet_like, 2: generate_bigearthnet_v2_like}[version]
    return generate(root, spec)


def make_fake_eurosat_s1(root: str | os.PathLike, per_class: int = 3, size: int = 16) -> Path:
    """Copernicus-Bench EuroSAT-S1: ``eurosat_s1/all_imgs/<Class>/<Class>_<n>.tif``.

    Two-band (VV, VH) float32 backscatter in dB; split files ``eurosat_s1/eurosat-<split>.txt``
    list ``<Class>_<n>.jpg`` names, as the real archive does (TorchGeo swaps the suffix).
    """
    from torchgeo.datasets import CopernicusBenchEuroSATS1

    root = Path(root)
    base = root / CopernicusBenchEuroSATS1.directory
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {s: [] for s in SPLITS}
    for c, cls in enumerate(CopernicusBenchEuroSATS1.classes):
        n = 0
        for split in SPLITS:
            for _ in range(per_class if split == "train" else 1):
                n += 1
                db = rng.normal(-15 + c, 2, (2, size, size)).astype(np.float32)
                write_geotiff(base / "all_imgs" / cls / f"{cls}_{n}.tif", db, ("VV", "VH"))
                lists[split].append(f"{cls}_{n}.jpg")
    for split, names in lists.items():
        (base / f"eurosat-{split}.txt").write_text("\n".join(names) + "\n")
    return root


def make_fake_so2sat(
    root: str | os.PathLike, per_class: int | Sequence[int] = 2, version: str = "2", size: int = 32
) -> Path:
    """So2Sat LCZ42 HDF5 files: ``sen1`` (N, 32, 32, 8), ``sen2`` (N, 32, 32, 10) float64 and a
    one-hot float64 ``label`` (N, 17), in the file names of ``version`` (``training.h5``, ...).

    Args:
        root: dataset root.
        per_class: training samples per class (int or 17 counts); other splits get 1 each.
        version: ``"2"`` or a version-3 name (``"3_random"``, ...).
        size: chip side (32 in the real data).
    """
    import h5py
    from torchgeo.datasets import So2Sat

    root = Path(root)
    counts = _per_class(per_class, len(So2Sat.classes))
    rng = np.random.default_rng(0)
    for split, rel in So2Sat.filenames_by_version[version].items():
        labels = np.repeat(np.arange(len(counts)), counts if split == "train" else 1)
        n = len(labels)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            sen1 = rng.normal(0, 0.1, (n, size, size, 8))
            sen1[..., 4:6] = np.abs(sen1[..., 4:6]) + 0.01 * labels[:, None, None, None]
            f.create_dataset("sen1", data=sen1.astype("<f8"))
            sen2 = rng.uniform(0, 0.3, (n, size, size, 10)) + 0.01 * labels[:, None, None, None]
            f.create_dataset("sen2", data=sen2.astype("<f8"))
            f.create_dataset("label", data=np.eye(len(counts), dtype="<f8")[labels])
    return root


def _rgb(rng: np.random.Generator, c: int, size: int) -> np.ndarray:
    base = np.array([40 + 50 * (c % 4), 60 + 30 * (c % 3), 80 + 20 * (c % 5)], dtype=np.float64)
    return np.clip(base + rng.normal(0, 15, (size, size, 3)), 0, 255).astype(np.uint8)


def make_fake_resisc45(
    root: str | os.PathLike, classes: Sequence[str] = ("airplane", "beach", "forest"),
    per_class: int = 3, size: int = 32,
) -> Path:
    """NWPU-RESISC45: ``NWPU-RESISC45/<class>/<class>_NNN.jpg`` (RGB JPEG) and
    ``resisc45-<split>.txt`` basename lists."""
    root = Path(root)
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {s: [] for s in SPLITS}
    for c, cls in enumerate(classes):
        folder = root / "NWPU-RESISC45" / cls
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for split in SPLITS:
            for _ in range(per_class if split == "train" else 1):
                n += 1
                name = f"{cls}_{n:03d}.jpg"
                Image.fromarray(_rgb(rng, c, size)).save(folder / name, quality=95)
                lists[split].append(name)
    for split, names in lists.items():
        (root / f"resisc45-{split}.txt").write_text("\n".join(names) + "\n")
    return root


def make_fake_ucmerced(
    root: str | os.PathLike, classes: Sequence[str] = ("agricultural", "beach", "harbor"),
    per_class: int = 3, size: int = 32,
) -> Path:
    """UC Merced: ``UCMerced_LandUse/Images/<class>/<class>NN.tif`` (RGB uint8 TIFF) and
    ``uc_merced-<split>.txt`` basename lists (TorchGeo resizes every image to 256 x 256)."""
    root = Path(root)
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {s: [] for s in SPLITS}
    for c, cls in enumerate(classes):
        folder = root / "UCMerced_LandUse" / "Images" / cls
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for split in SPLITS:
            for _ in range(per_class if split == "train" else 1):
                name = f"{cls}{n:02d}.tif"
                n += 1
                Image.fromarray(_rgb(rng, c, size)).save(folder / name)
                lists[split].append(name)
    for split, names in lists.items():
        (root / f"uc_merced-{split}.txt").write_text("\n".join(names) + "\n")
    return root


def make_fake_geotiff_folder(
    root: str | os.PathLike,
    classes: Sequence[str] = ("crop", "forest", "water"),
    per_class: int | Sequence[int] = 4,
    bands: Sequence[str] = ("B02", "B03", "B04", "B08"),
    dtype: str = "uint16",
    size: int = 16,
    nodata: float | None = None,
    describe_bands: bool = True,
    with_csv: bool = False,
) -> Path:
    """A user's GeoTIFF chip folder: ``root/<class>/<class>_<n>.tif``.

    With ``with_csv`` a ``labels.csv`` (``path,label,split``) is written too; of every four chips
    of a class the third is validation and the fourth test. With ``nodata`` the top-left 2x2
    pixels hold the nodata value.
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    counts = _per_class(per_class, len(classes))
    rows = []
    for c, (cls, count) in enumerate(zip(classes, counts, strict=True)):
        for i in range(count):
            small = np.dtype(dtype) == np.uint8
            data = rng.normal(50 + 50 * c if small else 1000 + 300 * c, 10 if small else 50,
                              (len(bands), size, size))
            data = np.clip(data, 1, 254 if small else None).astype(dtype)
            if nodata is not None:
                data[:, :2, :2] = nodata
            rel = f"{cls}/{cls}_{i}.tif"
            write_geotiff(root / rel, data, bands if describe_bands else None, nodata)
            rows.append((rel, cls, {2: "val", 3: "test"}.get(i % 4, "train")))
    if with_csv:
        with open(root / "labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "split"])
            writer.writerows(rows)
    return root


def make_fake_dual_pol_folder(
    root: str | os.PathLike,
    classes: Sequence[str] = ("field", "urban", "water"),
    per_class: int = 4,
    size: int = 16,
) -> Path:
    """Dual-polarisation SAR chips in linear power: ``root/<class>/<class>_<n>.tif``.

    Two float32 bands described ``VV`` and ``VH`` (backscatter sigma0, linear power), speckled
    (gamma-distributed) around a class-dependent mean from -20 to -5 dB; nodata 0 in the
    top-left pixel of every chip, as a terrain-corrected product has outside the swath.
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    for c, cls in enumerate(classes):
        vv_db, vh_db = -15.0 + 5 * c, -20.0 + 3 * c
        for i in range(per_class):
            mean = 10 ** (np.array([vv_db, vh_db]) / 10)[:, None, None]
            power = (mean * rng.gamma(4.0, 0.25, (2, size, size))).astype(np.float32)
            power[:, 0, 0] = 0.0
            write_geotiff(root / cls / f"{cls}_{i}.tif", power, ("VV", "VH"), nodata=0.0)
    return root


def make_fake_sar_ships(
    root: str | os.PathLike,
    classes: Sequence[str] = ("Cargo", "Fishing", "Tanker"),
    per_class: int | Sequence[int] = 4,
    fmt: str = "tif",
    size: int = 24,
    list_file: bool = False,
) -> Path:
    """FUSAR-Ship / OpenSARShip style single-band amplitude chips.

    ``fmt="tif"`` writes float32 linear amplitude GeoTIFFs; ``fmt="png"`` 8-bit (uint8) PNG
    quick-looks, as the FUSRS release ships. With ``list_file`` a ``train.txt`` / ``test.txt``
    pair of ``<relative path> <class index>`` lines is written as well (every fourth chip is test).
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    counts = _per_class(per_class, len(classes))
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for c, (cls, count) in enumerate(zip(classes, counts, strict=True)):
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            # Rayleigh-distributed sea clutter with a brighter ship of class-dependent length.
            amp = rng.rayleigh(0.05, (size, size))
            length = 4 + 4 * c
            r0 = size // 2
            amp[r0 - 1:r0 + 1, 2:2 + length] += rng.rayleigh(0.8, (2, length))
            name = f"{cls}_{i}.{fmt}"
            if fmt == "png":
                img = np.clip(amp / amp.max() * 255, 1, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / name)
            else:
                write_geotiff(folder / name, amp[None].astype(np.float32))
            lines["test" if i % 4 == 3 else "train"].append(f"{cls}/{name} {c}")
    if list_file:
        for split, rows in lines.items():
            (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def make_fake_scene(
    root: str | os.PathLike,
    size: int = 128,
    bands: int = 4,
    classes: Sequence[int] = (1, 2, 3),
    block: int = 16,
    points: bool = False,
) -> dict[str, Path]:
    """A georeferenced scene: a ``bands``-band float32 image and a uint8 land-cover raster.

    The label raster is made of ``block``-pixel blocks whose class follows a long-tailed mix of
    ``classes`` (0 is "unlabelled"); the image's bands carry the class as an offset, so image and
    labels agree. Both share CRS (UTM 32N), transform and 10 m pixels. With ``points`` a
    GeoJSON of labelled points (property ``class``) at block centres is written too.

    Returns:
        ``{"image": path, "labels": path}`` (and ``"points": path``).
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    nb = size // block
    weights = np.array([0.5 ** i for i in range(len(classes))])
    grid = rng.choice(np.asarray(classes), size=(nb, nb), p=weights / weights.sum())
    grid[0, 0] = 0  # an unlabelled corner
    labels = np.kron(grid, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    image = (labels[None].astype(np.float32) * 100 + rng.normal(0, 5, (bands, size, size)))
    origin = (600_000.0, 5_100_000.0)
    out = {
        "image": write_geotiff(root / "image" / "scene.tif", image.astype(np.float32),
                               origin=origin),
        "labels": write_geotiff(root / "labels" / "landcover.tif", labels[None], origin=origin),
    }
    if points:
        import json

        feats = []
        for i in range(nb):
            for j in range(nb):
                if grid[i, j] == 0:
                    continue
                x = origin[0] + (j + 0.5) * block * 10.0
                y = origin[1] - (i + 0.5) * block * 10.0
                feats.append({
                    "type": "Feature", "properties": {"class": int(grid[i, j])},
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                })
        fc = {"type": "FeatureCollection", "features": feats,
              "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}}}
        path = root / "points" / "points.geojson"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fc))
        out["points"] = path
    return out
