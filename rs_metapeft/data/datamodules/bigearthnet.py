"""BigEarthNet v1 (Sentinel-1, Sentinel-2 or both; 19 or 43 labels) via TorchGeo's ``BigEarthNet``.

The real TorchGeo class reads the files (``download=True`` works for online users); a thin
subclass adds the label names, an ``(N, K)`` label matrix read from the patches' JSON files
(no image is read; cached beside the band statistics with ``data.stats_cache``) and a band
subset. TorchGeo resamples every band to 120 x 120 pixels;
``data.image_size`` resizes on device.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset
from torchgeo.datasets import BigEarthNet

from ...io import atomic_path
from ..bigearthnet import BIGEARTHNET_ALL_BANDS, BIGEARTHNET_S1_BANDS, BIGEARTHNET_S2_BANDS
from .multilabel import MultiLabelDataModule

__all__ = ["BigEarthNetDataModule", "BigEarthNetSensors"]

#: TorchGeo's ``bands`` argument: which sensors' files are read.
BigEarthNetSensors = Literal["s1", "s2", "all"]
_SENSOR_BANDS: dict[str, tuple[str, ...]] = {
    "s1": BIGEARTHNET_S1_BANDS, "s2": BIGEARTHNET_S2_BANDS, "all": BIGEARTHNET_ALL_BANDS,
}


class _LabelledPatches:
    """What the BigEarthNet wrappers add to TorchGeo's classes: a ``label_matrix`` and channels.

    Mixed in before the TorchGeo class. A subclass reads its labels in
    ``_load_label_matrix`` (once, on first use) and passes each sample through
    :meth:`_keep_channels`.
    """

    channels: list[int] | None

    @property
    def label_matrix(self) -> np.ndarray:
        """Multi-hot labels of every patch, ``(N, num_classes)`` uint8, read without images."""
        if not hasattr(self, "_label_matrix"):
            self._label_matrix = self._load_label_matrix()
        return self._label_matrix

    def _load_label_matrix(self) -> np.ndarray:
        raise NotImplementedError

    def _keep_channels(self, sample: dict[str, Any]) -> dict[str, Any]:
        """The sample with only the ``channels`` asked for, in their order."""
        if self.channels is not None:
            sample["image"] = sample["image"][self.channels]
        return sample


class _BigEarthNetWithLabels(_LabelledPatches, BigEarthNet):
    """BigEarthNet with ``classes``, a ``label_matrix`` and an optional channel subset.

    Args:
        *args: :class:`~torchgeo.datasets.BigEarthNet` arguments.
        channels: indices of the channels to keep, in this order; ``None`` keeps all.
        cache_dir: folder where the label matrix is cached (``.npy``, keyed by root, split file
            and nomenclature); ``None`` reads the JSON files every time.
        **kwargs: :class:`~torchgeo.datasets.BigEarthNet` arguments.
    """

    def __init__(self, *args: Any, channels: list[int] | None = None,
                 cache_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels, self.cache_dir = channels, cache_dir

    @property
    def classes(self) -> list[str]:
        """Label names, in label order."""
        return list(self.class_sets[self.num_classes])

    def _load_label_matrix(self) -> np.ndarray:
        """The labels from the JSON files, or their cache."""
        # The full training split is ~270k JSON files: read them once, not at every run.
        if self.cache_dir is None:
            return self._read_labels()
        csv = Path(self.root, self.splits_metadata[self.split]["filename"])
        key = json.dumps([str(Path(self.root).resolve()), self.num_classes, self.bands == "s2"])
        digest = hashlib.sha256(key.encode() + csv.read_bytes()).hexdigest()[:16]
        path = Path(self.cache_dir) / f"bigearthnet-labels-{digest}.npy"
        if path.exists():
            return np.load(path)
        labels = self._read_labels()
        with atomic_path(path, keep_suffix=True) as tmp:
            np.save(tmp, labels)
        return labels

    def _read_labels(self) -> np.ndarray:
        rows = [self._target(i) for i in range(len(self))]
        if not rows:
            return np.zeros((0, self.num_classes), np.uint8)
        return np.stack(rows).astype(np.uint8)

    def _target(self, index: int) -> np.ndarray:
        try:
            return self._load_target(index).numpy()
        except IndexError:  # TorchGeo globs the folder's *.json and takes the first
            sensor = "s2" if self.bands == "s2" else "s1"
            csv = self.splits_metadata[self.split]["filename"]
            raise FileNotFoundError(
                f"{self.folders[index][sensor]} (listed in {os.path.join(self.root, csv)}) has "
                "no *_labels_metadata.json; the patch folder is missing or incomplete: extract "
                "BigEarthNet again, or drop the patch from the split file"
            ) from None

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._keep_channels(super().__getitem__(index))


def _sensors_and_channels(bands: list[str] | str | None) -> tuple[str, list[str], list[int] | None]:
    """TorchGeo's ``bands`` argument, the channel names, and which read channels to keep."""
    if bands is None or isinstance(bands, str):
        sensors = bands or "all"
        if sensors not in _SENSOR_BANDS:
            raise ValueError(
                f"data.bands {sensors!r}: give s1, s2, all, or a list of BigEarthNet bands "
                f"({', '.join(BIGEARTHNET_ALL_BANDS)})"
            )
        return sensors, list(_SENSOR_BANDS[sensors]), None
    names = list(bands)
    unknown = [b for b in names if b not in BIGEARTHNET_ALL_BANDS]
    if unknown:
        raise ValueError(
            f"data.bands: {unknown} are not BigEarthNet bands; choose from "
            f"{', '.join(BIGEARTHNET_ALL_BANDS)} (or give s1, s2 or all)"
        )
    if all(b in BIGEARTHNET_S1_BANDS for b in names):
        sensors = "s1"
    elif all(b in BIGEARTHNET_S2_BANDS for b in names):
        sensors = "s2"
    else:
        sensors = "all"
    loaded = _SENSOR_BANDS[sensors]
    channels = [loaded.index(b) for b in names]
    return sensors, names, None if channels == list(range(len(loaded))) else channels


class BigEarthNetDataModule(MultiLabelDataModule):
    """BigEarthNet v1 via ``torchgeo.datasets.BigEarthNet``: multi-label, long-tailed labels.

    Samples are ``{"image": float32 [C, 120, 120], "label": multi-hot [num_classes]}``. Channels
    come in TorchGeo's order: ``VH, VV`` (Sentinel-1 backscatter, dB), then ``B01 ... B08, B8A,
    B09, B11, B12`` (Sentinel-2 reflectance x 10000); a list of bands reads the sensors they
    need and keeps those channels in the order given.

    Args:
        root: folder with ``bigearthnet-{train,val,test}.csv``, ``BigEarthNet-v1.0/`` (S2) and
            ``BigEarthNet-S1-v1.0/`` (S1), or where they go with ``download=True``.
        bands: ``s1``, ``s2``, ``all`` (default) or a list of BigEarthNet bands (e.g.
            ``[VV, VH, B04, B03, B02, B08]``).
        num_classes: the label nomenclature, 19 or 43 classes; with ``data.classes`` a subset of
            its names (``num_classes`` then follows the subset's length).
        download: download the data if missing (needs the internet; tens of GB a sensor).
        **kwargs: :class:`MultiLabelDataModule` options.
    """

    #: The TorchGeo dataset read (named in messages), and the nomenclatures it offers.
    torchgeo_dataset: type = BigEarthNet
    label_sets: tuple[int, ...] = (19, 43)
    #: What a root holds, for the message naming what it lacks.
    expected_files = "BigEarthNet v1 there (the split files and one folder per sensor read)"

    def __init__(
        self,
        root: str = "data/bigearthnet",
        bands: list[str] | BigEarthNetSensors | None = None,
        num_classes: int = 19,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        if num_classes not in self.label_sets:
            sets = " or ".join(map(str, self.label_sets))
            raise ValueError(
                f"data.num_classes {num_classes}: {self.torchgeo_dataset.__name__} labels come in "
                f"{sets} classes; set {sets} (and data.classes for a subset)"
            )
        self.sensors, names, self.channels = _sensors_and_channels(bands)
        super().__init__(bands=names, num_classes=num_classes, **kwargs)
        self.root, self.download = root, download
        #: The nomenclature (19 or 43) that ``data.classes`` picks from.
        self.label_set = num_classes

    def dataset_key(self) -> str:
        """Dataset, root and nomenclature."""
        return f"{super().dataset_key()}:{self.label_set}"

    def prepare_data(self) -> None:
        """Download BigEarthNet when asked to (only on one process)."""
        if self.download:
            BigEarthNet(self.root, split="train", bands=self.sensors, num_classes=self.label_set,
                        download=True)

    def _check_files(self) -> None:
        """Name each missing file or folder (TorchGeo's own error names none)."""
        if self.download:
            return
        missing = self._missing_files()
        if missing:
            raise FileNotFoundError(
                f"the {self.torchgeo_dataset.__name__} root {self.root} has no "
                f"{', '.join(missing)}; put {self.expected_files}, or set data.download: true "
                "to download it (needs the internet)"
            )

    def _missing_files(self) -> list[str]:
        """The split files and sensor folders (or archives) that the root lacks."""
        missing = [
            meta["filename"] for meta in BigEarthNet.splits_metadata.values()
            if not os.path.exists(os.path.join(self.root, meta["filename"]))
        ]
        for sensor in ("s1", "s2") if self.sensors == "all" else (self.sensors,):
            meta = BigEarthNet.metadata[sensor]
            if not any(os.path.exists(os.path.join(self.root, meta[k]))
                       for k in ("directory", "filename")):
                missing.append(f"{meta['directory']}/ (or {meta['filename']})")
        return missing

    def make_dataset(self, split: str) -> Dataset:
        """The BigEarthNet split with the chosen sensors, channels and nomenclature."""
        self._check_files()
        dataset = _BigEarthNetWithLabels(
            self.root, split=split, bands=self.sensors, num_classes=self.label_set,
            download=self.download, channels=self.channels, cache_dir=self.stats_cache,
        )
        if len(dataset) == 0:
            csv = os.path.join(self.root, BigEarthNet.splits_metadata[split]["filename"])
            raise ValueError(f"{csv} lists no patches; list one '<S2 patch>,<S1 patch>' a line")
        return dataset
