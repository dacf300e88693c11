"""Data: TorchGeo-backed long-tailed datasets, synthetic scenes, statistics and datamodules."""

from .bigearthnet import MultiLabelSpec, generate_bigearthnet_like, generate_bigearthnet_v2_like
from .datamodules import (
    BigEarthNetDataModule,
    BigEarthNetV2DataModule,
    ChipFolderDataModule,
    EuroSATLongTailDataModule,
    EuroSATS1LongTailDataModule,
    GeoTiffFolderDataModule,
    LongTailDataModule,
    MultiLabelDataModule,
    RESISC45LongTailDataModule,
    SARShipChipsDataModule,
    SceneChipsDataModule,
    So2SatLongTailDataModule,
    SyntheticBigEarthNetDataModule,
    SyntheticBigEarthNetV2DataModule,
    SyntheticEuroSATDataModule,
    SyntheticSARDataModule,
    UCMercedLongTailDataModule,
    build_datamodule,
)
from .folder import ChipFolder, DataFileError, GeoTiffFolder
from .longtail import assign_groups, class_counts, longtail_indices, stratified_meta_split
from .sar import SARPreprocessing, SARShipChips
from .scene import SceneChips, chip_label
from .statistics import BandStatistics, compute_band_statistics
from .synthetic import SyntheticSpec, generate_eurosat_like, generate_sar_twin

__all__ = [
    "BandStatistics",
    "BigEarthNetDataModule",
    "BigEarthNetV2DataModule",
    "ChipFolder",
    "ChipFolderDataModule",
    "DataFileError",
    "EuroSATLongTailDataModule",
    "EuroSATS1LongTailDataModule",
    "GeoTiffFolder",
    "GeoTiffFolderDataModule",
    "LongTailDataModule",
    "MultiLabelDataModule",
    "MultiLabelSpec",
    "RESISC45LongTailDataModule",
    "SARPreprocessing",
    "SARShipChips",
    "SARShipChipsDataModule",
    "SceneChips",
    "SceneChipsDataModule",
    "So2SatLongTailDataModule",
    "SyntheticBigEarthNetDataModule",
    "SyntheticBigEarthNetV2DataModule",
    "SyntheticEuroSATDataModule",
    "SyntheticSARDataModule",
    "SyntheticSpec",
    "UCMercedLongTailDataModule",
    "assign_groups",
    "build_datamodule",
    "chip_label",
    "class_counts",
    "compute_band_statistics",
    "generate_bigearthnet_like",
    "generate_bigearthnet_v2_like",
    "generate_eurosat_like",
    "generate_sar_twin",
    "longtail_indices",
    "stratified_meta_split",
]
