"""Built-in synthetic long-tailed remote-sensing scenes, written as real GeoTIFFs.

The multispectral set is written in TorchGeo EuroSAT's on-disk layout (13-band uint16 GeoTIFFs
under ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/`` plus
``eurosat-{train,val,test}.txt``), so :class:`torchgeo.datasets.EuroSAT` itself reads it. The
Sentinel-1 twin (VV, VH backscatter in dB, float32) uses the chip-folder layout of
:class:`rs_metapeft.data.folder.ChipFolder` (``<Class>/*.tif`` plus ``split-{train,val,test}.txt``).

Each class is a mixture of two surface materials arranged by a class-specific spatial texture
(fields, roads, rivers, urban grids, open water, ...). Materials carry Sentinel-2 reflectance
signatures and Sentinel-1 backscatter levels; every scene gets a random gain and noise, and SAR
scenes multiplicative speckle. Training counts follow an exponential long-tail profile.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ..io import atomic_write_json

__all__ = [
    "EUROSAT_BAND_ORDER",
    "EUROSAT_BASE_DIR",
    "EUROSAT_CLASSES",
    "SAR_BANDS",
    "SyntheticSpec",
    "exponential_counts",
    "generate_eurosat_like",
    "generate_sar_twin",
]

#: Channel order of TorchGeo's EuroSAT files (``EuroSAT.all_band_names``; B8A is last there).
EUROSAT_BAND_ORDER = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
EUROSAT_BASE_DIR = os.path.join(
    "ds", "images", "remote_sensing", "otherDatasets", "sentinel_2", "tif"
)
EUROSAT_CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)
SAR_BANDS = ("VV", "VH")

# Reflectance (0-1) of surface materials at the Sentinel-2 bands, in EUROSAT_BAND_ORDER.
#            B01   B02   B03   B04   B05   B06   B07   B08   B09   B10   B11   B12   B8A
_MATERIALS = {
    "water":  [.070, .060, .050, .030, .020, .015, .012, .010, .005, .001, .005, .003, .010],
    "forest": [.030, .030, .050, .030, .090, .250, .300, .320, .150, .002, .150, .070, .330],
    "grass":  [.040, .050, .090, .060, .140, .300, .360, .380, .180, .002, .230, .120, .390],
    "crop":   [.050, .060, .100, .080, .170, .330, .400, .430, .200, .003, .260, .150, .440],
    "soil":   [.080, .100, .130, .170, .200, .220, .240, .260, .150, .004, .330, .280, .270],
    "urban":  [.120, .130, .140, .150, .160, .170, .180, .190, .110, .005, .230, .200, .195],
    "road":   [.140, .150, .160, .170, .175, .180, .185, .190, .100, .005, .210, .190, .190],
    "shrub":  [.050, .060, .080, .090, .150, .220, .260, .280, .140, .003, .280, .190, .290],
}
# Sentinel-1 backscatter (dB) of the same materials: (VV, VH).
_BACKSCATTER_DB = {
    "water": (-21.0, -28.0), "forest": (-7.5, -13.0), "grass": (-10.0, -17.0),
    "crop": (-9.0, -15.5), "soil": (-12.0, -20.0), "urban": (-2.0, -9.0),
    "road": (-15.0, -23.0), "shrub": (-8.5, -15.0),
}
# Per class: (texture, foreground material, background material).
_CLASS_RECIPES = (
    ("stripes", "crop", "soil"),       # AnnualCrop
    ("blobs", "forest", "shrub"),      # Forest
    ("patches", "shrub", "grass"),     # HerbaceousVegetation
    ("line", "road", "grass"),         # Highway
    ("blocks", "urban", "soil"),       # Industrial
    ("smooth", "grass", "crop"),       # Pasture
    ("dots", "forest", "soil"),        # PermanentCrop
    ("grid", "urban", "grass"),        # Residential
    ("river", "water", "grass"),       # River
    ("smooth", "water", "water"),      # SeaLake
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of a synthetic long-tailed set.

    Attributes:
        num_classes: number of classes (10 uses EuroSAT's names; more repeat the textures with
            perturbed spectra).
        imbalance_ratio: largest / smallest training class count (1 keeps classes balanced).
        max_per_class: training images of the largest class.
        val_per_class: validation images per class (balanced).
        test_per_class: test images per class (balanced).
        image_size: chip side in pixels.
        seed: random seed; the same spec always writes the same files.
    """

    num_classes: int = 10
    imbalance_ratio: float = 100.0
    max_per_class: int = 300
    val_per_class: int = 10
    test_per_class: int = 30
    image_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.imbalance_ratio < 1:
            raise ValueError(f"imbalance_ratio must be >= 1, got {self.imbalance_ratio}")
        if min(self.max_per_class, self.val_per_class, self.test_per_class) < 1:
            raise ValueError("every split needs at least one image per class")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")


def exponential_counts(max_count: int, num_classes: int, imbalance_ratio: float) -> list[int]:
    """Per-class counts of an exponential long-tail profile, at least 1 each.

    Args:
        max_count: count of the head class (class 0).
        num_classes: number of classes.
        imbalance_ratio: head count / tail count.

    Returns:
        Counts for class 0 .. num_classes-1, non-increasing.

    Example:
        >>> exponential_counts(100, 3, 100)
        [100, 10, 1]
    """
    if num_classes == 1:
        return [max_count]
    mu = (1.0 / imbalance_ratio) ** (1.0 / (num_classes - 1))
    return [max(1, int(round(max_count * mu**c))) for c in range(num_classes)]


def class_names(num_classes: int) -> list[str]:
    """Class names of a synthetic set: EuroSAT's, then ``Class10``, ``Class11``, ..."""
    names = list(EUROSAT_CLASSES[:num_classes])
    names += [f"Class{c:02d}" for c in range(len(names), num_classes)]
    return names


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A [0,1] mask of the foreground material for one scene."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    if kind == "stripes":
        freq = rng.uniform(4, 9)
        mask = (np.sin(2 * np.pi * freq * u + rng.uniform(0, 6.3)) > 0).astype(np.float32)
    elif kind == "line":
        width = rng.uniform(0.04, 0.08)
        mask = (np.abs(v - rng.uniform(0.3, 0.7)) < width).astype(np.float32)
    elif kind == "river":
        centre = 0.5 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 2.5) * u + rng.uniform(0, 6.3))
        mask = (np.abs(v - centre) < rng.uniform(0.06, 0.14)).astype(np.float32)
    elif kind in ("grid", "blocks"):
        cells = rng.integers(4, 8) if kind == "grid" else rng.integers(2, 4)
        fill = 0.55 if kind == "grid" else 0.8
        gx = (xx * cells) % 1.0 < fill
        gy = (yy * cells) % 1.0 < fill
        mask = (gx & gy).astype(np.float32)
    elif kind == "dots":
        cells = rng.integers(6, 11)
        dx = (xx * cells) % 1.0 - 0.5
        dy = (yy * cells) % 1.0 - 0.5
        mask = (dx**2 + dy**2 < 0.09).astype(np.float32)
    elif kind in ("blobs", "patches"):
        coarse = 4 if kind == "patches" else 8
        noise = rng.random((coarse, coarse)).astype(np.float32)
        reps = -(-size // coarse)
        mask = np.kron(noise, np.ones((reps, reps), np.float32))[:size, :size]
        mask = (mask > (0.5 if kind == "patches" else 0.3)).astype(np.float32)
    elif kind == "smooth":
        mask = np.clip(0.85 + 0.1 * np.sin(2 * np.pi * u), 0, 1).astype(np.float32)
    else:  # pragma: no cover - recipes above name only known textures
        raise ValueError(f"unknown texture {kind!r}")
    return mask


def _class_recipe(label: int, rng_seed: int) -> tuple[str, np.ndarray, np.ndarray, tuple, tuple]:
    """Texture, two spectra and two backscatter pairs of a class (perturbed beyond 10 classes)."""
    texture, fg, bg = _CLASS_RECIPES[label % len(_CLASS_RECIPES)]
    fg_s = np.asarray(_MATERIALS[fg], np.float32)
    bg_s = np.asarray(_MATERIALS[bg], np.float32)
    fg_b, bg_b = _BACKSCATTER_DB[fg], _BACKSCATTER_DB[bg]
    if label >= len(_CLASS_RECIPES):
        crng = np.random.default_rng([rng_seed, label])
        fg_s, bg_s, fg_b, bg_b = _perturb_materials(fg_s, bg_s, fg_b, bg_b, crng, 0.3, 3.0)
    return texture, fg_s, bg_s, fg_b, bg_b


def _perturb_materials(fg_s: np.ndarray, bg_s: np.ndarray, fg_b: tuple, bg_b: tuple,
                       crng: np.random.Generator, spread: float, shift_db: float) -> tuple:
    """Two spectra scaled band-wise by 1 +- ``spread`` and backscatter moved by +- ``shift_db``."""
    fg_s = fg_s * crng.uniform(1 - spread, 1 + spread, fg_s.shape).astype(np.float32)
    bg_s = bg_s * crng.uniform(1 - spread, 1 + spread, bg_s.shape).astype(np.float32)
    shift = crng.uniform(-shift_db, shift_db, 2)
    return fg_s, bg_s, tuple(np.add(fg_b, shift)), tuple(np.add(bg_b, -shift))


def _optical_dn(refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Observe a reflectance scene: per-scene gain (illumination), noise, uint16 DN (x 10000)."""
    refl = refl * rng.uniform(0.75, 1.25)
    refl = refl + rng.normal(0, 0.02, refl.shape)
    return np.clip(refl * 10000, 0, 65535).astype(np.uint16)


def _sar_db(db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Observe a backscatter scene (dB): per-scene calibration offset, 4-look speckle, float32."""
    db = db + rng.normal(0, 1.0)
    looks = 4.0
    speckle = rng.gamma(looks, 1.0 / looks, db.shape)
    linear = 10 ** (db / 10) * speckle
    return (10 * np.log10(np.maximum(linear, 1e-6))).astype(np.float32)


def _split_counts(spec: SyntheticSpec) -> dict[str, list[int]]:
    return {
        "train": exponential_counts(spec.max_per_class, spec.num_classes, spec.imbalance_ratio),
        "val": [spec.val_per_class] * spec.num_classes,
        "test": [spec.test_per_class] * spec.num_classes,
    }


def _write_tif(path: Path, data: np.ndarray, rng: np.random.Generator, band_names,
               pixel_size: float = 10.0, origin: tuple[float, float] | None = None) -> None:
    """Write a (C, H, W) array as a georeferenced GeoTIFF (UTM 32N; origin drawn if not given)."""
    bands, height, width = data.shape
    if origin is None:
        origin = (rng.uniform(3e5, 7e5), rng.uniform(4.8e6, 5.6e6))
    transform = from_origin(*origin, pixel_size, pixel_size)
    profile = dict(
        driver="GTiff", height=height, width=width, count=bands, dtype=data.dtype.name,
        crs=CRS.from_epsg(32632), transform=transform,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, name)


def _scenes(spec: SyntheticSpec, modality: str):
    """Yield (split, class_name, index, array) for every scene of the set, deterministically."""
    names = class_names(spec.num_classes)
    for split_id, (split, counts) in enumerate(_split_counts(spec).items()):
        for label, count in enumerate(counts):
            texture, fg_s, bg_s, fg_b, bg_b = _class_recipe(label, spec.seed)
            rng = np.random.default_rng([spec.seed, split_id, label, 0 if modality == "s2" else 1])
            for i in range(count):
                mask = _texture(texture, spec.image_size, rng)[None]
                if modality == "s2":
                    arr = _optical_dn(mask * fg_s[:, None, None] + (1 - mask) * bg_s[:, None, None],
                                      rng)
                else:
                    vv = mask[0] * fg_b[0] + (1 - mask[0]) * bg_b[0]
                    vh = mask[0] * fg_b[1] + (1 - mask[0]) * bg_b[1]
                    arr = _sar_db(np.stack([vv, vh]), rng)
                yield split, names[label], i, arr, rng


def _write_manifest(root: Path, spec: SyntheticSpec, layout: str, bands) -> None:
    counts = _split_counts(spec)
    names = class_names(spec.num_classes)
    manifest = {
        "generator": "rs_metapeft.data.synthetic",
        "layout": layout,
        "bands": list(bands),
        "spec": asdict(spec),
        "classes": names,
        "counts": {s: dict(zip(names, c, strict=True)) for s, c in counts.items()},
    }
    atomic_write_json(root / "synthetic.json", manifest)


def _already_written(root: Path, spec: SyntheticSpec) -> bool:
    manifest = root / "synthetic.json"
    if not manifest.exists():
        return False
    try:
        return json.loads(manifest.read_text()).get("spec") == asdict(spec)
    except json.JSONDecodeError:
        return False


def generate_eurosat_like(root: str | os.PathLike, spec: SyntheticSpec | None = None) -> Path:
    """Write a synthetic long-tailed Sentinel-2 set in TorchGeo EuroSAT's on-disk layout.

    The files are 13-band uint16 GeoTIFFs (reflectance x 10000) in the channel order TorchGeo's
    :class:`~torchgeo.datasets.EuroSAT` expects, so ``EuroSAT(root, split=..., bands=...)`` reads
    them. Writing is skipped when ``root`` already holds a set made from the same spec; the
    manifest ``synthetic.json`` is written last, so an interrupted run is redone.

    Args:
        root: dataset root (what ``EuroSAT(root=...)`` takes).
        spec: generator parameters; defaults to :class:`SyntheticSpec`.

    Returns:
        The root path.

    Example:
        >>> import tempfile
        >>> from torchgeo.datasets import EuroSAT
        >>> root = generate_eurosat_like(tempfile.mkdtemp(), SyntheticSpec(
        ...     num_classes=3, max_per_class=4, val_per_class=1, test_per_class=1, image_size=16))
        >>> len(EuroSAT(root, split="train", bands=("B04", "B03", "B02")))
        7
    """
    spec = spec or SyntheticSpec()
    root = Path(root)
    if _already_written(root, spec):
        return root
    base = root / EUROSAT_BASE_DIR
    split_lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    counter: dict[str, int] = {}
    for split, cls, _, arr, rng in _scenes(spec, "s2"):
        (base / cls).mkdir(parents=True, exist_ok=True)
        counter[cls] = counter.get(cls, 0) + 1
        name = f"{cls}_{counter[cls]}.tif"
        _write_tif(base / cls / name, arr, rng, EUROSAT_BAND_ORDER)
        split_lists[split].append(name.replace(".tif", ".jpg"))  # EuroSAT lists name .jpg files
    for split, names in split_lists.items():
        (root / f"eurosat-{split}.txt").write_text("\n".join(names) + "\n")
    _write_manifest(root, spec, "torchgeo.datasets.EuroSAT", EUROSAT_BAND_ORDER)
    return root


def generate_sar_twin(root: str | os.PathLike, spec: SyntheticSpec | None = None) -> Path:
    """Write the Sentinel-1 twin: VV/VH backscatter in dB (float32) with speckle.

    Layout: ``root/<Class>/<Class>_<n>.tif`` and ``root/split-{train,val,test}.txt`` listing
    ``<Class>/<Class>_<n>.tif`` paths, as :class:`rs_metapeft.data.folder.ChipFolder` reads.

    Args:
        root: output folder.
        spec: generator parameters; defaults to :class:`SyntheticSpec`.

    Returns:
        The root path.
    """
    spec = spec or SyntheticSpec()
    root = Path(root)
    if _already_written(root, spec):
        return root
    split_lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    counter: dict[str, int] = {}
    for split, cls, _, arr, rng in _scenes(spec, "s1"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        counter[cls] = counter.get(cls, 0) + 1
        rel = f"{cls}/{cls}_{counter[cls]}.tif"
        _write_tif(root / rel, arr, rng, SAR_BANDS)
        split_lists[split].append(rel)
    for split, names in split_lists.items():
        (root / f"split-{split}.txt").write_text("\n".join(names) + "\n")
    _write_manifest(root, spec, "rs_metapeft.data.folder.ChipFolder", SAR_BANDS)
    return root
