"""BigEarthNet v1's on-disk layout, and a seeded synthetic multi-label set written in it.

The layout is what :class:`torchgeo.datasets.BigEarthNet` reads:
``bigearthnet-{train,val,test}.csv`` (one ``<S2 patch>,<S1 patch>`` pair a line, no header),
``BigEarthNet-v1.0/<S2 patch>/`` with one GeoTIFF per Sentinel-2 band (``<patch>_B01.tif`` ...
``<patch>_B12.tif``: uint16 reflectance x 10000, 10 m bands at the patch size, 20 m bands at
half and 60 m bands at a sixth of it) and
``BigEarthNet-S1-v1.0/<S1 patch>/`` with ``<patch>_VH.tif`` and ``<patch>_VV.tif`` (float32
backscatter in dB). Each patch folder holds ``<patch>_labels_metadata.json`` whose ``labels`` are
CORINE Land Cover names of the 43-class nomenclature; a Sentinel-1 one names its Sentinel-2 twin
in ``corresponding_s2_patch``.

The synthetic set draws each patch's labels from a Gaussian copula: a latent normal per label,
correlated within a CORINE level-1 group (artificial, agricultural, forest and semi-natural,
wetlands, water), switched on above the threshold that gives the label its frequency. Frequencies
fall exponentially over the labels' (roughly BigEarthNet's) frequency order, over
``label_imbalance_ratio``. A patch's image is a partition into one region per label, each filled
with that label's surface materials and texture (from :mod:`rs_metapeft.data.synthetic`), seen by
Sentinel-2 and, with speckle, by Sentinel-1.

BigEarthNet v2 (reBEN), read by :class:`torchgeo.datasets.BigEarthNetV2`, keeps the band files
but moves the labels into one table: ``metadata.parquet`` holds a row per patch (``patch_id``,
the Sentinel-2 name; ``s1_name``; ``labels``, names of the 19-class nomenclature; ``split``:
``train``, ``validation`` or ``test``; ``country`` ...). Patch folders are grouped by tile and
acquisition: ``BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_B01.tif`` (the tile folder is the
patch id less its row and column), ``BigEarthNet-S1/<acquisition>/<s1_name>/<s1_name>_VV.tif``
and ``Reference_Maps/<tile>/<patch_id>/<patch_id>_reference_map.tif``, the pixel-level CORINE
map (uint16 level-3 codes). :func:`generate_bigearthnet_v2_like` writes that layout from the
same seeded labels and images (its map is the patch's label regions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import rasterio
from torchgeo.datasets import BigEarthNet, BigEarthNetV2

from ..extras import require_extra
from ..io import atomic_path, atomic_write_json, atomic_write_text
from .synthetic import (
    _BACKSCATTER_DB,
    _MATERIALS,
    EUROSAT_BAND_ORDER,
    _already_written,
    _optical_dn,
    _perturb_materials,
    _sar_db,
    _texture,
    _write_tif,
)

__all__ = [
    "BIGEARTHNET_ALL_BANDS",
    "BIGEARTHNET_S1_BANDS",
    "BIGEARTHNET_S2_BANDS",
    "CLC_CODES",
    "MultiLabelSpec",
    "generate_bigearthnet_like",
    "generate_bigearthnet_v2_like",
    "label_frequencies",
    "label_names",
    "require_parquet",
    "to_19_classes",
]

#: Sentinel-1 channels in the order TorchGeo's ``BigEarthNet`` stacks them: it sorts the file
#: names, and ``..._VH.tif`` sorts before ``..._VV.tif``.
BIGEARTHNET_S1_BANDS = ("VH", "VV")
#: Sentinel-2 channels in TorchGeo's order (``sort_sentinel2_bands``: B8A after B08; no B10).
BIGEARTHNET_S2_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)
#: Channels of ``bands="all"``: Sentinel-1 first, then Sentinel-2.
BIGEARTHNET_ALL_BANDS = BIGEARTHNET_S1_BANDS + BIGEARTHNET_S2_BANDS
#: Ground sampling distance (m) of each Sentinel-2 band, which sets its file's size.
_S2_RESOLUTION_M = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
    "B8A": 20, "B09": 60, "B11": 20, "B12": 20,
}

#: CORINE Land Cover level-3 code of each of BigEarthNet's 43 labels, in TorchGeo's label order
#: (``BigEarthNet.class_sets[43]``: CLC's nomenclature without 335, glaciers).
CLC_CODES = (
    111, 112, 121, 122, 123, 124, 131, 132, 133, 141, 142,
    211, 212, 213, 221, 222, 223, 231, 241, 242, 243, 244,
    311, 312, 313, 321, 322, 323, 324, 331, 332, 333, 334,
    411, 412, 421, 422, 423,
    511, 512, 521, 522, 523,
)
# Labels from most to least frequent, roughly as in BigEarthNet (forests and arable land lead,
# burnt areas and salines trail), as CLC codes.
_FREQUENCY_ORDER = (
    312, 313, 211, 324, 311, 243, 242, 231, 112, 523, 512, 321, 412, 322, 323, 121, 411, 223,
    221, 222, 241, 333, 511, 212, 244, 111, 122, 521, 131, 142, 213, 522, 331, 133, 141, 421,
    423, 332, 124, 132, 123, 422, 334,
)
# Surface of each label: (texture, foreground material, background material); the materials'
# spectra are then perturbed per label, so labels that share a recipe still differ.
_SURFACES = {
    111: ("grid", "urban", "urban"), 112: ("grid", "urban", "grass"),
    121: ("blocks", "urban", "soil"), 122: ("line", "road", "grass"),
    123: ("blocks", "urban", "water"), 124: ("line", "road", "soil"),
    131: ("patches", "soil", "shrub"), 132: ("patches", "soil", "urban"),
    133: ("blocks", "soil", "urban"), 141: ("dots", "forest", "urban"),
    142: ("smooth", "grass", "urban"),
    211: ("stripes", "crop", "soil"), 212: ("stripes", "crop", "water"),
    213: ("stripes", "water", "crop"), 221: ("stripes", "shrub", "soil"),
    222: ("dots", "forest", "grass"), 223: ("dots", "shrub", "soil"),
    231: ("smooth", "grass", "crop"), 241: ("stripes", "crop", "shrub"),
    242: ("patches", "crop", "grass"), 243: ("patches", "crop", "forest"),
    244: ("dots", "forest", "crop"),
    311: ("blobs", "forest", "grass"), 312: ("blobs", "forest", "shrub"),
    313: ("patches", "forest", "shrub"), 321: ("smooth", "grass", "shrub"),
    322: ("patches", "shrub", "grass"), 323: ("patches", "shrub", "soil"),
    324: ("blobs", "shrub", "forest"), 331: ("smooth", "soil", "water"),
    332: ("patches", "soil", "urban"), 333: ("patches", "soil", "grass"),
    334: ("blobs", "soil", "forest"),
    411: ("patches", "grass", "water"), 412: ("blobs", "shrub", "water"),
    421: ("patches", "grass", "water"), 422: ("blocks", "water", "soil"),
    423: ("smooth", "water", "soil"),
    511: ("river", "water", "grass"), 512: ("smooth", "water", "water"),
    521: ("smooth", "water", "soil"), 522: ("river", "water", "soil"),
    523: ("smooth", "water", "water"),
}
_SPLITS = ("train", "val", "test")
# BigEarthNet's ten countries, for v2's ``country`` column (one per acquisition day here).
_COUNTRIES = ("Austria", "Belgium", "Finland", "Ireland", "Kosovo", "Lithuania", "Luxembourg",
              "Portugal", "Serbia", "Switzerland")


@dataclass(frozen=True)
class MultiLabelSpec:
    """Parameters of a synthetic BigEarthNet-like multi-label set.

    Attributes:
        num_train: training patches.
        num_val: validation patches.
        num_test: test patches.
        label_imbalance_ratio: frequency of the most frequent label over the least frequent's
            (of the 43; before ``min_label_count`` lifts the rarest).
        head_frequency: share of patches that carry the most frequent label.
        co_occurrence: correlation (0-1) of the latent label variables within a CORINE level-1
            group; 0 draws labels independently.
        min_label_count: every one of the 43 labels is on in at least this many patches of
            every split (so every label has positives to learn and to score).
        patch_size: side in pixels of the 10 m bands (BigEarthNet: 120); a multiple of 6, as the
            60 m bands are a sixth of it. TorchGeo resamples every band to 120 x 120 on reading.
        seed: random seed; the same spec always writes the same files.
    """

    num_train: int = 600
    num_val: int = 100
    num_test: int = 200
    label_imbalance_ratio: float = 300.0
    head_frequency: float = 0.4
    co_occurrence: float = 0.5
    min_label_count: int = 1
    patch_size: int = 120
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.num_train, self.num_val, self.num_test) < 1:
            raise ValueError("every split needs at least one patch (num_train, num_val, num_test)")
        if self.label_imbalance_ratio < 1:
            raise ValueError(
                f"label_imbalance_ratio must be >= 1, got {self.label_imbalance_ratio}"
            )
        if not 0 < self.head_frequency < 1:
            raise ValueError(f"head_frequency must be in (0, 1), got {self.head_frequency}")
        if not 0 <= self.co_occurrence < 1:
            raise ValueError(f"co_occurrence must be in [0, 1), got {self.co_occurrence}")
        if self.min_label_count < 0:
            raise ValueError(f"min_label_count must be >= 0, got {self.min_label_count}")
        if self.patch_size < 6 or self.patch_size % 6:
            raise ValueError(
                f"patch_size must be a multiple of 6 (the 60 m bands are a sixth of it), "
                f"got {self.patch_size}"
            )

    def split_size(self, split: str) -> int:
        """Patches in ``split`` (``train``, ``val`` or ``test``)."""
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]


def label_names(num_classes: int) -> list[str]:
    """BigEarthNet's label names of the 19- or 43-class nomenclature, in label order."""
    if num_classes not in BigEarthNet.class_sets:
        raise ValueError(f"BigEarthNet has 19 or 43 classes, not {num_classes}")
    return list(BigEarthNet.class_sets[num_classes])


def to_19_classes(labels43: np.ndarray) -> np.ndarray:
    """Multi-hot (N, 43) labels in BigEarthNet's 19-class nomenclature, (N, 19).

    Uses TorchGeo's mapping (``BigEarthNet.label_converter``); eleven of the 43 labels (roads,
    ports, airports, mines, dumps, construction, green urban and sport areas, bare rock, burnt
    areas, intertidal flats) have no 19-class label.
    """
    out = np.zeros((labels43.shape[0], 19), dtype=labels43.dtype)
    for src, dst in BigEarthNet.label_converter.items():
        out[:, dst] |= labels43[:, src]
    return out


def label_frequencies(spec: MultiLabelSpec) -> np.ndarray:
    """Expected share of patches carrying each of the 43 labels (label order), before lifting."""
    rank = np.array([_FREQUENCY_ORDER.index(code) for code in CLC_CODES], dtype=np.float64)
    decay = spec.label_imbalance_ratio ** (-rank / (len(CLC_CODES) - 1))
    return spec.head_frequency * decay


def _draw_labels(spec: MultiLabelSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Multi-hot (n, 43) uint8 labels: correlated within CORINE groups, long-tailed, >= 1 each."""
    freq = label_frequencies(spec)
    thresholds = np.array([NormalDist().inv_cdf(1 - p) for p in freq])
    groups = np.array([code // 100 for code in CLC_CODES])
    shared = rng.standard_normal((n, groups.max() + 1))[:, groups]
    rho = spec.co_occurrence
    latent = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((n, len(freq)))
    labels = (latent > thresholds).astype(np.uint8)
    # Every patch gets a label of the 19-class nomenclature (a patch whose only land cover is,
    # say, an airport would have none there): the one its latent variables favour most.
    kept = np.array(sorted(BigEarthNet.label_converter))
    bare = to_19_classes(labels).sum(1) == 0
    margin = (latent - thresholds)[:, kept]
    labels[bare, kept[margin[bare].argmax(1)]] = 1
    for label in range(len(freq)):
        missing = spec.min_label_count - int(labels[:, label].sum())
        if missing > 0:
            off = np.flatnonzero(labels[:, label] == 0)
            labels[rng.choice(off, size=min(missing, off.size), replace=False), label] = 1
    return labels


def _surfaces(seed: int) -> dict[int, tuple]:
    """Per label: texture, two reflectance spectra (EuroSAT band order) and two (VV, VH) in dB."""
    out = {}
    for label, code in enumerate(CLC_CODES):
        texture, fg, bg = _SURFACES[code]
        spectra = _perturb_materials(
            np.asarray(_MATERIALS[fg], np.float32), np.asarray(_MATERIALS[bg], np.float32),
            _BACKSCATTER_DB[fg], _BACKSCATTER_DB[bg], np.random.default_rng([seed, 99, label]),
            0.15, 1.5,
        )
        out[label] = (texture, *spectra)
    return out


def _render(labels: np.ndarray, size: int, surfaces: dict[int, tuple],
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One patch: reflectance (13, H, W) in EuroSAT band order, backscatter (VV, VH) in dB, map.

    The patch is split into one region per label (nearest of random seed points), each showing
    its label's materials in its label's texture; the map (H, W) holds each pixel's CORINE
    level-3 code (uint16), as BigEarthNet v2's reference maps do.
    """
    present = np.flatnonzero(labels)
    yy, xx = np.mgrid[0:size, 0:size]
    seeds = rng.uniform(0, size, (present.size, 2))
    region = ((yy[None] - seeds[:, 0, None, None]) ** 2
              + (xx[None] - seeds[:, 1, None, None]) ** 2).argmin(0)
    refl = np.zeros((len(EUROSAT_BAND_ORDER), size, size), np.float32)
    db = np.zeros((2, size, size), np.float32)
    for r, label in enumerate(present):
        texture, fg_s, bg_s, fg_b, bg_b = surfaces[int(label)]
        inside = (region == r)[None]
        mask = _texture(texture, size, rng)[None]
        refl += inside * (mask * fg_s[:, None, None] + (1 - mask) * bg_s[:, None, None])
        db += inside * (mask * np.asarray(fg_b, np.float32)[:, None, None]
                        + (1 - mask) * np.asarray(bg_b, np.float32)[:, None, None])
    clc = np.asarray(CLC_CODES, np.uint16)[present][region]
    return refl, db, clc


def _downsample(band: np.ndarray, factor: int) -> np.ndarray:
    """Block mean: a coarser band of the same ground area."""
    h, w = band.shape
    return band.reshape(h // factor, factor, w // factor, factor).mean((1, 3))


def _patch_names(split_id: int, index: int, tile: str = "") -> tuple[str, str]:
    """BigEarthNet-style names of a patch's Sentinel-2 and Sentinel-1 folders.

    One acquisition per split and hundred patches; the last two fields are the patch's row and
    column in its tile, as in BigEarthNet. ``tile`` goes before them in the Sentinel-2 name
    (v2 names carry the processing baseline, orbit and tile: ``_N9999_R022_T33UUP``).
    """
    day, cell = divmod(index, 100)
    stamp = f"2017{6 + split_id:02d}{1 + day % 28:02d}T{10 + day // 28:02d}1031"
    row, col = divmod(cell, 10)
    return (f"S2A_MSIL2A_{stamp}{tile}_{row}_{col}",
            f"S1A_IW_GRDH_1SDV_{stamp}_33UUP_{row}_{col}")


def _write_bands(s2_dir: Path, s1_dir: Path, refl: np.ndarray, db: np.ndarray,
                 rng: np.random.Generator) -> tuple[float, float]:
    """Write a patch's S2 band files (``<folder>_<band>.tif``) and S1 ones; return its origin."""
    origin = (float(rng.uniform(3e5, 7e5)), float(rng.uniform(4.8e6, 5.6e6)))
    dn = _optical_dn(refl, rng)
    s2_dir.mkdir(parents=True, exist_ok=True)
    for band in BIGEARTHNET_S2_BANDS:
        factor = _S2_RESOLUTION_M[band] // 10
        plane = dn[EUROSAT_BAND_ORDER.index(band)].astype(np.float64)
        plane = np.round(_downsample(plane, factor)).astype(np.uint16)[None]
        _write_tif(s2_dir / f"{s2_dir.name}_{band}.tif", plane, rng, (band,), 10.0 * factor,
                   origin)
    backscatter = _sar_db(db, rng)
    s1_dir.mkdir(parents=True, exist_ok=True)
    for band, plane in zip(("VV", "VH"), backscatter, strict=True):
        _write_tif(s1_dir / f"{s1_dir.name}_{band}.tif", plane[None], rng, (band,), 10.0, origin)
    return origin


def _write_v1_patch(root: Path, split_id: int, index: int, labels: np.ndarray,
                    refl: np.ndarray, db: np.ndarray, clc: np.ndarray,
                    rng: np.random.Generator) -> str:
    """Write one v1 patch: band files and both label JSON files; return its split-file line."""
    s2, s1 = _patch_names(split_id, index)
    s2_dir = root / BigEarthNet.metadata["s2"]["directory"] / s2
    s1_dir = root / BigEarthNet.metadata["s1"]["directory"] / s1
    origin = _write_bands(s2_dir, s1_dir, refl, db, rng)
    names43 = label_names(43)
    names = [names43[k] for k in np.flatnonzero(labels)]
    extent = 10.0 * refl.shape[-1]
    coordinates = {"ulx": origin[0], "uly": origin[1], "lrx": origin[0] + extent,
                   "lry": origin[1] - extent}
    atomic_write_json(s2_dir / f"{s2}_labels_metadata.json", {
        "labels": names, "coordinates": coordinates, "projection": "EPSG:32632",
        "tile_source": s2, "acquisition_date": s2.split("_")[2],
    })
    atomic_write_json(s1_dir / f"{s1}_labels_metadata.json", {
        "labels": names, "coordinates": coordinates, "projection": "EPSG:32632",
        "corresponding_s2_patch": s2, "scene_source": s1, "acquisition_time": s1.split("_")[4],
    })
    return f"{s2},{s1}"


def _write_v1_index(root: Path, lines: dict[str, list[str]]) -> None:
    """The split files: one ``<S2 patch>,<S1 patch>`` line per patch."""
    for split, rows in lines.items():
        atomic_write_text(root / BigEarthNet.splits_metadata[split]["filename"],
                          "\n".join(rows) + "\n")


def _write_v2_patch(root: Path, split_id: int, index: int, labels: np.ndarray,
                    refl: np.ndarray, db: np.ndarray, clc: np.ndarray,
                    rng: np.random.Generator) -> dict[str, Any]:
    """Write one v2 patch: band files and reference map; return its ``metadata.parquet`` row."""
    v1_name, _ = _patch_names(split_id, index)
    s2, s1 = _patch_names(split_id, index, tile="_N9999_R022_T33UUP")
    # TorchGeo finds a patch's folder by dropping the name's last fields: row and column (S2),
    # and also the tile (S1).
    tile, acquisition = s2.rsplit("_", 2)[0], s1.rsplit("_", 3)[0]
    folders = BigEarthNetV2.dir_file_names
    origin = _write_bands(root / folders["s2"] / tile / s2, root / folders["s1"] / acquisition / s1,
                          refl, db, rng)
    maps = root / folders["maps"] / tile / s2
    maps.mkdir(parents=True, exist_ok=True)
    _write_tif(maps / f"{s2}_reference_map.tif", clc[None], rng, ("CLC",), 10.0, origin)
    names19 = label_names(19)
    return {
        "patch_id": s2,
        "labels": [names19[k] for k in np.flatnonzero(to_19_classes(labels[None])[0])],
        "split": BigEarthNetV2.split_map[_SPLITS[split_id]],
        "country": _COUNTRIES[(index // 100) % len(_COUNTRIES)],
        "s1_name": s1,
        "s2v1_name": v1_name,
        "contains_seasonal_snow": False,
        "contains_cloud_or_shadow": False,
    }


def _write_v2_index(root: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    """``metadata.parquet``: every split's rows in one table."""
    import pandas as pd

    table = pd.DataFrame.from_records([row for split in _SPLITS for row in rows[split]])
    with atomic_path(root / BigEarthNetV2.dir_file_names["metadata"], keep_suffix=True) as tmp:
        table.to_parquet(tmp, index=False)


@dataclass(frozen=True)
class _Layout:
    """How one BigEarthNet version lays a patch out on disk, and its index of patches."""

    dataset: type  # the TorchGeo class that reads it
    nomenclatures: tuple[int, ...]  # label sets it carries
    write_patch: Callable[..., Any]  # (root, split_id, index, labels, refl, db, map, rng) -> entry
    write_index: Callable[[Path, dict[str, list[Any]]], None]  # entries of every split

    @property
    def name(self) -> str:
        return f"torchgeo.datasets.{self.dataset.__name__}"


_V1 = _Layout(BigEarthNet, (43, 19), _write_v1_patch, _write_v1_index)
_V2 = _Layout(BigEarthNetV2, (19,), _write_v2_patch, _write_v2_index)


def _write_split(root: Path, spec: MultiLabelSpec, split_id: int, surfaces: dict[int, tuple],
                 layout: _Layout) -> tuple[list[Any], dict[str, list[int]]]:
    """Write one split's patches; return their index entries and label counts per nomenclature."""
    rng = np.random.default_rng([spec.seed, split_id])
    labels = _draw_labels(spec, spec.split_size(_SPLITS[split_id]), rng)
    entries = []
    for i, row in enumerate(labels):
        rng = np.random.default_rng([spec.seed, split_id, i])
        refl, db, clc = _render(row, spec.patch_size, surfaces, rng)
        entries.append(layout.write_patch(root, split_id, i, row, refl, db, clc, rng))
    counts = {"43": labels.sum(0).tolist(), "19": to_19_classes(labels).sum(0).tolist()}
    return entries, {str(n): counts[str(n)] for n in layout.nomenclatures}


def _generate(root: str | os.PathLike, spec: MultiLabelSpec | None, layout: _Layout) -> Path:
    """Write the synthetic set in one version's layout (skipped when already written)."""
    spec = spec or MultiLabelSpec()
    root = Path(root)
    if _already_written(root, spec) and _manifest_layout(root) == layout.name:
        return root
    surfaces = _surfaces(spec.seed)
    entries: dict[str, list[Any]] = {}
    counts: dict[str, dict[str, list[int]]] = {}
    with rasterio.Env():  # one GDAL environment for the thousands of small files
        for split_id, split in enumerate(_SPLITS):
            entries[split], counts[split] = _write_split(root, spec, split_id, surfaces, layout)
    layout.write_index(root, entries)
    atomic_write_json(root / "synthetic.json", {
        "generator": "rs_metapeft.data.bigearthnet",
        "layout": layout.name,
        "bands": {"s1": list(BIGEARTHNET_S1_BANDS), "s2": list(BIGEARTHNET_S2_BANDS)},
        "spec": asdict(spec),
        "classes": {str(n): label_names(n) for n in layout.nomenclatures},
        "label_counts": counts,
    })
    return root


def _manifest_layout(root: Path) -> str | None:
    """The layout recorded in ``root``'s manifest (a set written by an older build: v1's)."""
    return json.loads((root / "synthetic.json").read_text()).get("layout", _V1.name)


def generate_bigearthnet_like(root: str | os.PathLike, spec: MultiLabelSpec | None = None) -> Path:
    """Write a synthetic multi-label, long-tailed set in BigEarthNet v1's on-disk layout.

    ``torchgeo.datasets.BigEarthNet(root, split=..., bands="s1" | "s2" | "all", num_classes=19 |
    43)`` reads it. Writing is skipped when ``root`` already holds a set made from the same spec;
    the manifest ``synthetic.json`` (spec, bands, label counts per split in both nomenclatures)
    is written last, so an interrupted run is redone.

    Args:
        root: dataset root (what ``BigEarthNet(root=...)`` takes).
        spec: generator parameters; defaults to :class:`MultiLabelSpec`.

    Returns:
        The root path.

    Example:
        >>> import tempfile
        >>> from torchgeo.datasets import BigEarthNet
        >>> root = generate_bigearthnet_like(tempfile.mkdtemp(), MultiLabelSpec(
        ...     num_train=4, num_val=1, num_test=1, min_label_count=0, patch_size=12))
        >>> BigEarthNet(root, split="train", bands="all", num_classes=19)[0]["label"].shape
        torch.Size([19])
    """
    return _generate(root, spec, _V1)


def require_parquet() -> None:
    """Refuse, naming the extra to install, when pandas cannot read or write parquet files.

    Raises:
        MissingExtraError: pyarrow is not installed (``pip install 'rs_metapeft[bigearthnet]'``).
    """
    require_extra("pyarrow", "bigearthnet", "BigEarthNet v2's metadata.parquet")


def generate_bigearthnet_v2_like(root: str | os.PathLike,
                                 spec: MultiLabelSpec | None = None) -> Path:
    """Write the same synthetic set in BigEarthNet v2's on-disk layout (19 labels).

    ``torchgeo.datasets.BigEarthNetV2(root, split=..., bands="s1" | "s2" | "all")`` reads it:
    ``metadata.parquet`` (needs pyarrow: the ``bigearthnet`` extra), the Sentinel-1 and
    Sentinel-2 patch folders and the reference maps. A spec gives the same labels and images as
    :func:`generate_bigearthnet_like`; the manifest ``synthetic.json`` holds the 19-class label
    counts per split. Writing is skipped when ``root`` already holds this layout of the spec.

    Args:
        root: dataset root (what ``BigEarthNetV2(root=...)`` takes).
        spec: generator parameters; defaults to :class:`MultiLabelSpec`.

    Returns:
        The root path.

    Raises:
        MissingExtraError: pyarrow is not installed.

    Example:
        >>> import tempfile
        >>> from torchgeo.datasets import BigEarthNetV2
        >>> root = generate_bigearthnet_v2_like(tempfile.mkdtemp(), MultiLabelSpec(
        ...     num_train=4, num_val=1, num_test=1, min_label_count=0, patch_size=12))
        >>> sample = BigEarthNetV2(root, split="train", bands="all")[0]
        >>> sample["image_s1"].shape, sample["image_s2"].shape, sample["label"].shape
        (torch.Size([2, 120, 120]), torch.Size([12, 120, 120]), torch.Size([19]))
    """
    require_parquet()
    return _generate(root, spec, _V2)
