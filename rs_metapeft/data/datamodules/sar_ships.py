"""SAR ship chips (FUSAR-Ship, OpenSARShip, FUSRS style) with explicit dB preprocessing."""

from __future__ import annotations

import logging
from typing import Any

from ..sar import SARPreprocessing, SARShipChips
from .geotiff_folder import GeoTiffFolderDataModule

__all__ = ["SARShipChipsDataModule"]

log = logging.getLogger(__name__)


class SARShipChipsDataModule(GeoTiffFolderDataModule):
    """SAR ship chips, FUSAR-Ship / OpenSARShip / FUSRS style (see :class:`.SARShipChips`).

    Args:
        root: dataset folder (``root/<class>/*.png|tif``).
        bands: the polarisation, e.g. ``[VV]`` (default) or ``[HH]``.
        preprocessing: ``{input: amplitude|intensity|db, to_db: bool, clip_db: [lo, hi]}``;
            recorded in :attr:`preprocessing_record` and the statistics cache key.
        **kwargs: :class:`GeoTiffFolderDataModule` options (``split_files``, ``classes`` ...).
    """

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        preprocessing: SARPreprocessing | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(preprocessing, dict):
            preprocessing = SARPreprocessing(**preprocessing)
        self.preprocessing = preprocessing or SARPreprocessing()
        kwargs.setdefault("num_classes", None)
        super().__init__(root=root, bands=list(bands or ["VV"]),
                         preprocessing=self.preprocessing, **kwargs)
        self.preprocessing_record = self.preprocessing.to_dict()
        log.info("SAR preprocessing: %s", self.preprocessing_record)

    dataset_type = SARShipChips
