"""Chip-folder datasets: ``root/<Class>/*.tif`` GeoTIFF chips (or a CSV) read with rasterio.

:class:`ChipFolder` is the minimal layout the synthetic SAR twin uses. :class:`GeoTiffFolder` is
for users' own data: class folders or a ``path,label[,split]`` CSV, any band count and dtype,
band names from the recipe or the files' band descriptions, nodata masked to NaN, and a scan of
every file before training so that a bad file stops the run at once with its name (or, with
``on_bad_file="skip"``, is dropped with a warning and a count) instead of halfway through an epoch.
Split membership comes from split lists or a CSV column, or else a seeded stratified split; every
listed path must lie inside the dataset root.
"""

from __future__ import annotations

import csv
import os
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from torchgeo.datasets import NonGeoDataset

from ..choices import check_choice
from ..io import path_inside
from .splits import stratified_split

if TYPE_CHECKING:  # sar.py builds on this module
    from .sar import SARPreprocessing

__all__ = [
    "ChipFolder", "DataFileError", "GeoTiffFolder", "OnBadFile", "Split", "read_band_descriptions",
]

#: A dataset split.
Split = Literal["train", "val", "test"]
SPLITS = get_args(Split)
#: What a scan does with an unusable file (``data.on_bad_file``).
OnBadFile = Literal["error", "skip"]
SPLITS = ("train", "val", "test")
#: A class with fewer chips than this (in all splits together) is named in a warning.
FEW_IMAGES = 5


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and what to do."""


class ChipFolder(NonGeoDataset):
    """Classification chips stored as ``root/<Class>/<name>.tif``, one class per folder.

    Split membership comes from ``root/split-<split>.txt`` (one ``<Class>/<name>.tif`` per line,
    inside ``root``). Without that file the split cannot be built (every chip in every split would
    test on training images); :class:`GeoTiffFolder` splits a folder without lists, seeded. Samples
    are TorchGeo-style dicts with ``image`` (float32, C x H x W) and ``label``.

    Args:
        root: dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        bands: band names in file order; the files must have exactly this many bands.
        transforms: optional callable applied to each sample dict.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: Split = "train",
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
        if not split_file.is_file():
            raise DataFileError(
                f"{split_file} does not exist: a chip folder needs split-train.txt, "
                "split-val.txt and split-test.txt (lines like Forest/a.tif). Write them, or use "
                "GeoTiffFolderDataModule, which splits a folder without lists by a seed"
            )
        self.samples: list[tuple[Path, int]] = []
        for line, text in enumerate(split_file.read_text().splitlines(), start=1):
            rel = text.strip()
            if not rel:
                continue
            where = f"{split_file}, line {line}"
            path = self._inside_root(rel, where)
            cls = self.relative_path(path).parts[0]
            if cls not in class_to_idx:
                raise DataFileError(
                    f"{where}: {rel!r} names class {cls!r}, which has no folder in {self.root}"
                )
            self.samples.append((path, class_to_idx[cls]))
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _inside_root(self, rel: str, where: str) -> Path:
        """``root / rel``, normalised, or stop naming the row when it leaves the root.

        See :func:`~rs_metapeft.io.path_inside` (a symbolic link inside the root is followed).
        """
        path = path_inside(self.root, rel)
        if path is None:
            root = Path(os.path.normpath(self.root.absolute()))
            raise DataFileError(
                f"{where}: path {rel!r} points to {os.path.normpath(root / rel)}, outside the "
                f"dataset root {root}; list only files under data.root (paths relative to it), "
                "or move the file there"
            )
        return path

    def relative_path(self, path: Path) -> Path:
        """A chip's path relative to ``root``, as a split list names it."""
        return Path(os.path.relpath(path, self.root.absolute()))

    def _read(self, path: Path) -> np.ndarray:
        """The chip as a float32 (C, H, W) array."""
        try:
            with rasterio.open(path) as src:
                return src.read().astype(np.float32)
        except RasterioIOError as err:
            raise DataFileError(f"cannot read {path}: {err}. Replace or remove the file.") from err

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, label = self.samples[index]
        array = self._read(path)
        if array.shape[0] != len(self.bands):
            raise DataFileError(
                f"{path} has {array.shape[0]} bands but data.bands lists {len(self.bands)} "
                f"({', '.join(self.bands)}); fix data.bands or the file"
            )
        sample = {"image": torch.from_numpy(array), "label": torch.tensor(label)}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample


def read_band_descriptions(path: str | os.PathLike) -> list[str]:
    """Band names stored in a GeoTIFF's band descriptions.

    Raises:
        DataFileError: the file cannot be read or a band has no description.
    """
    try:
        with rasterio.open(path) as src:
            names = list(src.descriptions)
    except RasterioIOError as err:
        raise DataFileError(f"cannot read {path}: {err}. Replace or remove the file.") from err
    if not all(names):
        raise DataFileError(
            f"{path} has no band description for band(s) "
            f"{[i + 1 for i, n in enumerate(names) if not n]}; name the bands in data.bands"
        )
    return [str(n) for n in names]


class _Row(NamedTuple):
    """One chip of the index: its path, label as written, where it was listed, and its split."""

    path: Path
    label: str
    where: str
    split: str | None


class GeoTiffFolder(ChipFolder):
    """A user's GeoTIFF chips: class folders or a CSV of ``path,label[,split]``.

    Layouts:

    - ``root/<class>/*.tif`` (classes are the sorted folder names); split membership from
      ``split_files[split]`` or ``root/split-<split>.txt`` (one relative path per line, optionally
      followed by a label).
    - ``csv_file`` with columns ``path,label`` and optionally ``split`` (header optional; paths
      relative to ``root``); labels are class names or indices into ``classes``. Every row names
      its split, or none does.

    Without split lists (or a split column) the chips are split here: a seeded stratified split
    (:func:`~rs_metapeft.data.splits.stratified_split`) gives ``val_fraction`` and
    ``test_fraction`` of every class to validation and test. A class with fewer than three chips
    cannot give each split one; all its chips stay in training and a warning names it. Every path
    must lie inside ``root``.

    Pixels equal to the nodata value (``nodata`` or the file's own) become NaN; the statistics skip
    them and the datamodule fills them on device.

    Args:
        root: dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        bands: band names in file order; ``None`` reads the first file's band descriptions.
        csv_file: CSV index (relative to ``root`` or absolute).
        classes: the classes to use, in label order (a subset of the folders or CSV labels:
            chips of other classes are left out, with a warning naming them); default: folder
            names or CSV labels.
        split_files: per split, a list file of relative paths (optionally followed by a label).
        nodata: nodata value overriding the files' own.
        on_bad_file: ``"error"`` (default) or ``"skip"`` for files the scan finds unusable.
        scan: read every file at construction and check it (recommended before training).
        extensions: file suffixes to collect in folder mode.
        transforms: optional callable applied to each sample dict.
        val_fraction: without split lists, share of every class that goes to validation.
        test_fraction: without split lists, share of every class that goes to test.
        split_seed: without split lists, the seed of the split.
        preprocessing: SAR conversion to dB (and clipping) applied to every chip as it is read,
            after nodata is masked (:class:`~rs_metapeft.data.sar.SARPreprocessing`); ``None``
            reads the values as stored.

    Raises:
        DataFileError: missing root, unknown label, empty class, a path outside ``root``, a CSV
            that gives some rows a split and others none, or a bad file (with
            ``on_bad_file="error"``); the message names the file (and row) and what to do.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: Split = "train",
        bands: Sequence[str] | None = None,
        csv_file: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        split_files: Mapping[str, str] | None = None,
        nodata: float | None = None,
        on_bad_file: OnBadFile = "error",
        scan: bool = True,
        extensions: Sequence[str] = (".tif", ".tiff"),
        transforms: Callable[[dict], dict] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        preprocessing: SARPreprocessing | None = None,
    ) -> None:
        check_choice(on_bad_file, OnBadFile, "data.on_bad_file")
        check_choice(split, Split, "split")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < value < 1:
                raise ValueError(f"data.{name} must be in (0, 1), got {value}")
        if val_fraction + test_fraction >= 1:
            raise ValueError(
                f"data.val_fraction + data.test_fraction must be below 1 (training keeps the "
                f"rest), got {val_fraction} + {test_fraction}"
            )
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFileError(f"dataset root {self.root} does not exist; check data.root")
        self.split = split
        self.transforms = transforms
        self.nodata = nodata
        self.preprocessing = preprocessing
        self._headers: set[tuple[str | None, float | None]] = set()
        self.extensions = tuple(e.lower() for e in extensions)
        if csv_file is not None:
            csv_path = Path(csv_file)
            rows = self._csv_rows(csv_path if csv_path.is_absolute() else self.root / csv_path)
        else:
            rows = self._folder_rows(split_files)
        self.classes = list(classes) if classes is not None else self._default_classes(rows)
        if classes is not None:
            rows = self._in_classes(rows)
        labelled = [(row, self._label(row.label, row.where)) for row in rows]
        if split == "train":
            self._warn_small_classes([y for _, y in labelled])
        #: How split membership was decided: ``"listed"`` (lists or CSV column) or ``"seeded"``.
        self.split_source = "seeded" if rows and rows[0].split is None else "listed"
        if self.split_source == "seeded":
            labelled = self._seeded_split(labelled, val_fraction, test_fraction, split_seed)
        else:
            labelled = [(row, y) for row, y in labelled if row.split == split]
        self.samples = [(row.path, y) for row, y in labelled]
        if not self.samples:
            raise DataFileError(f"no chips for split {split!r} under {self.root}; check the layout")
        if bands is None:
            bands = read_band_descriptions(self.samples[0][0])
        self.bands = tuple(bands)
        self.targets = [label for _, label in self.samples]
        self.skipped: list[tuple[Path, str]] = []
        if scan:
            self.scan(on_bad_file)

    # -- index -------------------------------------------------------------------------------
    def _default_classes(self, rows: list[_Row]) -> list[str]:
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        all_labels = getattr(self, "_all_labels", None)
        if all_labels is None:  # folder layout: the folders are the classes
            return folders
        # A CSV's class list comes from all its rows, so every split gets the same label indices.
        if all_labels <= set(folders):
            return folders
        only_csv = sorted(all_labels - set(folders))
        if folders and self.split == "train":
            warnings.warn(
                f"labels {only_csv} of the CSV are no class folder of {self.root}; each became a "
                f"class of its own ({len(all_labels)} classes). If they are typos, fix the CSV; "
                "pin the class list with data.classes",
                stacklevel=4,
            )
        return sorted(all_labels)

    def _in_classes(self, rows: list[_Row]) -> list[_Row]:
        """The rows of the chosen classes; the others are left out with one warning."""
        chosen = [r.label in self.classes or r.label.isdigit() for r in rows]
        kept = [r for r, keep in zip(rows, chosen, strict=True) if keep]
        if len(kept) < len(rows):
            out = [r for r, keep in zip(rows, chosen, strict=True) if not keep]
            warnings.warn(
                f"left out {len(out)} chips of classes not in data.classes "
                f"({', '.join(sorted({r.label for r in out}))}; first: {out[0].where}); add "
                "those classes to data.classes to use them",
                stacklevel=3,
            )
        return kept

    def _warn_small_classes(self, labels: list[int]) -> None:
        """Name the classes with fewer than :data:`FEW_IMAGES` chips.

        Counted over every split where one index lists them all (a CSV, or no lists at all),
        else over the training list.
        """
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(self.classes))
        small = [f"{name} ({n})" for name, n in zip(self.classes, counts, strict=True)
                 if n < FEW_IMAGES]
        if small:
            warnings.warn(
                f"classes {', '.join(small)} of {self.root} have fewer than {FEW_IMAGES} chips: "
                "too few to learn or to test them; add chips, or leave the classes out with "
                "data.classes",
                stacklevel=4,
            )

    def _label(self, label: str, where: str) -> int:
        if label in self.classes:
            return self.classes.index(label)
        if label.isdigit() and int(label) < len(self.classes):
            return int(label)
        raise DataFileError(
            f"{where}: label {label!r} is not in the class list ({', '.join(self.classes)}); "
            "fix the label or add the class to data.classes"
        )

    def _seeded_split(self, labelled: list[tuple[_Row, int]], val_fraction: float,
                      test_fraction: float, seed: int) -> list[tuple[_Row, int]]:
        """This split's share of a layout without split lists (the same for every split).

        Classes are keyed by a checksum of their name, not their index, so a class keeps its split
        when ``classes`` changes or other classes are added.
        """
        keys = {row.label: zlib.crc32(row.label.encode()) for row, _ in labelled}
        parts = stratified_split([keys[row.label] for row, _ in labelled],
                                 [val_fraction, test_fraction], seed)
        if parts.unsplit and self.split == "train":
            names = sorted(label for label, key in keys.items() if key in parts.unsplit)
            warnings.warn(
                f"classes {names} of {self.root} have fewer than 3 chips, too few to give "
                "validation and test one each; all their chips stay in training, so the test "
                "metrics say nothing about them. Add chips, or write split lists",
                stacklevel=3,
            )
        chosen = dict(zip(SPLITS, [parts.keep, *parts.held], strict=True))[self.split]
        return [labelled[i] for i in chosen]

    def _csv_rows(self, path: Path) -> list[_Row]:
        if not path.is_file():
            raise DataFileError(f"label CSV {path} does not exist; check data.csv_file")
        with open(path, newline="") as f:
            table = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if table and [c.strip().lower() for c in table[0][:2]] == ["path", "label"]:
            table = [(i + 2, r) for i, r in enumerate(table[1:])]
        else:
            table = [(i + 1, r) for i, r in enumerate(table)]
        rows = []
        self._all_labels = {r[1].strip() for _, r in table if len(r) >= 2}
        for line, row in table:
            where = f"{path}, line {line}"
            if len(row) < 2:
                raise DataFileError(f"{where}: expected path,label[,split], got {row}")
            split = row[2].strip() if len(row) > 2 and row[2].strip() else None
            if split is not None and split not in SPLITS:
                raise DataFileError(
                    f"{where}: split {split!r} is not one of {', '.join(SPLITS)}; fix the row"
                )
            rows.append(_Row(self._inside_root(row[0].strip(), where), row[1].strip(), where,
                             split))
        unassigned = [r for r in rows if r.split is None]
        if unassigned and len(unassigned) < len(rows):
            raise DataFileError(
                f"{unassigned[0].where}: the row has no split while other rows have one; give "
                "every row a split (train, val or test), or none to have the chips split by "
                "data.split_seed"
            )
        return rows

    def _folder_rows(self, split_files: Mapping[str, str] | None) -> list[_Row]:
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise DataFileError(f"no class folders under {self.root}; expected root/<class>/*.tif")
        for folder in folders:
            if not any(p.suffix.lower() in self.extensions for p in folder.iterdir()):
                raise DataFileError(
                    f"class folder {folder} holds no {'/'.join(self.extensions)} files; add chips "
                    "or remove the folder"
                )
        list_file = None
        if split_files is not None:
            if self.split not in split_files:
                raise DataFileError(
                    f"data.split_files has no entry for split {self.split!r} "
                    f"(it has {', '.join(split_files)}); add one, e.g. {self.split}: test.txt"
                )
            list_file = self.root / split_files[self.split]
        elif (self.root / f"split-{self.split}.txt").exists():
            list_file = self.root / f"split-{self.split}.txt"
        elif others := sorted(p.name for p in self.root.glob("split-*.txt")):
            raise DataFileError(
                f"{self.root} has {', '.join(others)} but no split-{self.split}.txt; write it "
                "too, or remove the lists to have the chips split by data.split_seed"
            )
        if list_file is None:
            return [
                _Row(p, p.parent.name, str(p), None) for f in folders for p in sorted(f.iterdir())
                if p.suffix.lower() in self.extensions
            ]
        if not list_file.is_file():
            raise DataFileError(f"split list {list_file} does not exist; check data.split_files")
        rows = []
        for line, text in enumerate(list_file.read_text().splitlines(), start=1):
            parts = text.split()
            if not parts:
                continue
            where = f"{list_file}, line {line}"
            path = self._inside_root(parts[0], where)
            label = parts[1] if len(parts) > 1 else self.relative_path(path).parts[0]
            rows.append(_Row(path, label, where, self.split))
        return rows

    # -- reading -----------------------------------------------------------------------------
    def _read(self, path: Path) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # PNG chips have no CRS
                with rasterio.open(path) as src:
                    nodata = self.nodata if self.nodata is not None else src.nodata
                    array = src.read().astype(np.float32)
                    # A handful of distinct (CRS, nodata) pairs at most: what the scan saw.
                    self._headers.add((src.crs.to_string() if src.crs else None, src.nodata))
        except RasterioIOError as err:
            raise DataFileError(
                f"cannot read {path}: {err}. The file is corrupt or truncated; replace or "
                "remove it (or set data.on_bad_file: skip)"
            ) from err
        if nodata is not None:
            array[array == np.float32(nodata)] = np.nan
        return array if self.preprocessing is None else self.preprocessing.apply(array)

    @property
    def data_crs(self) -> str | None:
        """The CRS every chip read so far is in (``"EPSG:32632"``), or ``None`` (none, or mixed).

        After :meth:`scan` that is every chip of the split; without one, the first chip's.
        """
        if not self._headers and self.samples:
            self._read(self.samples[0][0])
        crs = {c for c, _ in self._headers}
        return crs.pop() if len(crs) == 1 else None

    @property
    def declared_nodata(self) -> float | None:
        """The nodata value training used: ``nodata`` if given, else the one all chips declare."""
        if self.nodata is not None:
            return self.nodata
        values = {v for _, v in self._headers}
        return values.pop() if len(values) == 1 else None

    def check_file(self, path: Path) -> str | None:
        """Why a chip is unusable (unreadable, wrong band count, no valid pixel), or ``None``."""
        try:
            array = self._read(path)
        except DataFileError as err:
            return str(err)
        if array.shape[0] != len(self.bands):
            return (
                f"{path} has {array.shape[0]} bands but data.bands lists {len(self.bands)} "
                f"({', '.join(self.bands)}); fix data.bands or the file"
            )
        if np.isnan(array).all():
            return f"{path} holds only nodata/NaN pixels; remove it or fix its nodata value"
        return None

    def scan(self, on_bad_file: OnBadFile = "error") -> list[tuple[Path, str]]:
        """Check every chip; raise on the first bad one, or drop bad ones with a warning.

        Returns:
            The dropped ``(path, reason)`` pairs (empty unless ``on_bad_file="skip"``).
        """
        bad = [(p, why) for p, _ in self.samples if (why := self.check_file(p)) is not None]
        if not bad:
            return []
        if on_bad_file == "error":
            more = f" ({len(bad) - 1} more bad files in this split)" if len(bad) > 1 else ""
            raise DataFileError(f"{bad[0][1]}{more}")
        dropped = {p for p, _ in bad}
        self.samples = [(p, y) for p, y in self.samples if p not in dropped]
        self.targets = [y for _, y in self.samples]
        self.skipped = bad
        warnings.warn(
            f"skipped {len(bad)} of {len(bad) + len(self.samples)} files in the {self.split} split "
            f"of {self.root} (first: {bad[0][1]})",
            stacklevel=2,
        )
        return bad
