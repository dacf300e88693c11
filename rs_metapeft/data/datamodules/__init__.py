"""Long-tailed classification datamodules, one per file as TorchGeo lays them out.

:class:`LongTailDataModule` (``base``) holds what every dataset shares; each other module adds one
dataset. All are re-exported by :mod:`rs_metapeft.data`, the path recipes use as ``class_path``.
"""

from .base import LongTailDataModule
from .bigearthnet import BigEarthNetDataModule
from .bigearthnet_v2 import BigEarthNetV2DataModule
from .build import build_datamodule
from .chip_folder import ChipFolderDataModule
from .eurosat import EuroSATLongTailDataModule
from .eurosat_s1 import EuroSATS1LongTailDataModule
from .geotiff_folder import GeoTiffFolderDataModule
from .multilabel import MultiLabelDataModule
from .resisc45 import RESISC45LongTailDataModule
from .sar_ships import SARShipChipsDataModule
from .scene_chips import SceneChipsDataModule
from .so2sat import So2SatLongTailDataModule
from .synthetic_bigearthnet import SyntheticBigEarthNetDataModule, SyntheticBigEarthNetV2DataModule
from .synthetic_eurosat import SyntheticEuroSATDataModule
from .synthetic_sar import SyntheticSARDataModule
from .ucmerced import UCMercedLongTailDataModule

__all__ = [
    "BigEarthNetDataModule",
    "BigEarthNetV2DataModule",
    "ChipFolderDataModule",
    "EuroSATLongTailDataModule",
    "EuroSATS1LongTailDataModule",
    "GeoTiffFolderDataModule",
    "LongTailDataModule",
    "MultiLabelDataModule",
    "RESISC45LongTailDataModule",
    "SARShipChipsDataModule",
    "SceneChipsDataModule",
    "So2SatLongTailDataModule",
    "SyntheticBigEarthNetDataModule",
    "SyntheticBigEarthNetV2DataModule",
    "SyntheticEuroSATDataModule",
    "SyntheticSARDataModule",
    "UCMercedLongTailDataModule",
    "build_datamodule",
]
