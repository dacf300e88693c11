"""BigEarthNet v2 (Sentinel-1, Sentinel-2 or both; 19 labels) via TorchGeo's ``BigEarthNetV2``.

The real TorchGeo class reads the files (``download=True`` works for online users); a thin
subclass adds the label names, an ``(N, 19)`` label matrix read from ``metadata.parquet`` (no
image is read), one ``image`` of Sentinel-1 then Sentinel-2 channels for ``bands: all``
(TorchGeo returns ``image_s1`` and ``image_s2``), and a band subset. Bands, channel order and
options are :class:`~rs_metapeft.data.BigEarthNetDataModule`'s; v2 has the 19-class
nomenclature only. Reading ``metadata.parquet`` needs pyarrow (the ``bigearthnet`` extra).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchgeo.datasets import BigEarthNetV2

from ..bigearthnet import require_parquet
from .bigearthnet import BigEarthNetDataModule, _LabelledPatches

__all__ = ["BigEarthNetV2DataModule"]


class _BigEarthNetV2WithLabels(_LabelledPatches, BigEarthNetV2):
    """BigEarthNetV2 with ``classes``, a ``label_matrix``, one ``image`` and a channel subset.

    Args:
        *args: :class:`~torchgeo.datasets.BigEarthNetV2` arguments.
        channels: indices of the channels to keep, in this order; ``None`` keeps all.
        **kwargs: :class:`~torchgeo.datasets.BigEarthNetV2` arguments.
    """

    def __init__(self, *args: Any, channels: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels = channels
        # Read now (the table is in memory): a bad label is named before any sample is read.
        self._label_matrix = self._load_label_matrix()

    @property
    def classes(self) -> list[str]:
        """Label names, in label order."""
        return list(self.class_set)

    def _load_label_matrix(self) -> np.ndarray:
        """The ``labels`` column of the split's rows of ``metadata.parquet``, multi-hot."""
        out = np.zeros((len(self), self.num_classes), np.uint8)
        for row, names in enumerate(self.metadata_df["labels"]):
            for name in names:
                if name not in self.class2idx:
                    raise ValueError(
                        f"{os.path.join(self.root, self.dir_file_names['metadata'])}: patch "
                        f"{self.metadata_df['patch_id'][row]} has the label {name!r}, not one of "
                        f"BigEarthNetV2's 19 classes ({', '.join(self.class_set)}); fix its "
                        "labels or drop the row"
                    )
                out[row, self.class2idx[name]] = 1
        return out

    def _load_map(self, index: int) -> Tensor:
        # The pixel-level CORINE map is not used by scene classification: skip reading a file
        # and remapping its codes for every sample (``__getitem__`` drops the mask).
        return torch.zeros(0, dtype=torch.long)

    def _load_image(self, index: int, sensor: str) -> Tensor:
        try:
            return super()._load_image(index, sensor)
        except ValueError:  # TorchGeo globs the patch folder's *.tif and finds nothing to stack
            name = self.metadata_df.loc[index, "s1_name" if sensor == "s1" else "patch_id"]
            raise FileNotFoundError(
                f"the {sensor.upper()} patch {name} (listed in "
                f"{os.path.join(self.root, self.dir_file_names['metadata'])}) has no band files "
                f"under {os.path.join(self.root, self.dir_file_names[sensor])}; the patch folder "
                "is missing or incomplete: extract BigEarthNet v2 again, or drop its row"
            ) from None

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        sample.pop("mask", None)
        if self.bands == "all":  # one input, in BigEarthNet v1's order: Sentinel-1 first
            sample["image"] = torch.cat([sample.pop("image_s1"), sample.pop("image_s2")])
        return self._keep_channels(sample)


class BigEarthNetV2DataModule(BigEarthNetDataModule):
    """BigEarthNet v2 via ``torchgeo.datasets.BigEarthNetV2``: multi-label, long-tailed labels.

    Samples are ``{"image": float32 [C, 120, 120], "label": multi-hot [19]}`` with the channels of
    :class:`~rs_metapeft.data.BigEarthNetDataModule` (``VH, VV``, then ``B01 ... B12``), the
    same ``bands`` options and ``data.classes`` subsets of the 19 labels. v2 (reBEN) has new,
    geographic splits and refined labels, in the 19-class nomenclature only.

    Args:
        root: folder with ``metadata.parquet``, ``BigEarthNet-S1/``, ``BigEarthNet-S2/`` and
            ``Reference_Maps/`` (TorchGeo wants all four, whatever the bands), or where they go
            with ``download=True``.
        **kwargs: :class:`~rs_metapeft.data.BigEarthNetDataModule` options (``bands``,
            ``num_classes``: 19 only, ``download``: every archive, tens of GB) and
            :class:`MultiLabelDataModule` options.
    """

    torchgeo_dataset = BigEarthNetV2
    label_sets = (19,)
    expected_files = (
        "BigEarthNet v2 there (metadata.parquet and the extracted BigEarthNet-S1/, "
        "BigEarthNet-S2/ and Reference_Maps/ folders)"
    )

    def __init__(self, root: str = "data/bigearthnet_v2", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)

    def prepare_data(self) -> None:
        """Download BigEarthNet v2 when asked to (only on one process)."""
        if self.download:
            require_parquet()
            BigEarthNetV2(self.root, split="train", bands=self.sensors, download=True)

    def _missing_files(self) -> list[str]:
        """The metadata table and folders that the root lacks."""
        names = BigEarthNetV2.dir_file_names
        return [
            name if key == "metadata" else f"{name}/" for key, name in names.items()
            if not os.path.exists(os.path.join(self.root, name))
        ]

    def make_dataset(self, split: str) -> Dataset:
        """The BigEarthNetV2 split with the chosen sensors and channels."""
        self._check_files()
        require_parquet()
        dataset = _BigEarthNetV2WithLabels(
            self.root, split=split, bands=self.sensors, download=self.download,
            channels=self.channels,
        )
        if len(dataset) == 0:
            table = os.path.join(self.root, BigEarthNetV2.dir_file_names["metadata"])
            raise ValueError(
                f"{table} has no row whose split is {BigEarthNetV2.split_map[split]!r}; give "
                "every split patches (split: train, validation or test)"
            )
        return dataset
