"""Data: TorchGeo-backed long-tailed datasets, synthetic scenes, statistics and datamodules."""

from .datamodule import (
    ChipFolderDataModule,
    EuroSATLongTailDataModule,
    LongTailDataModule,
    SyntheticEuroSATDataModule,
    SyntheticSARDataModule,
)
from .folder import ChipFolder, DataFileError
from .longtail import assign_groups, class_counts, longtail_indices, stratified_meta_split
from .statistics import BandStatistics, compute_band_statistics
from .synthetic import SyntheticSpec, generate_eurosat_like, generate_sar_twin
from .torchgeo_sets import (
    EuroSATS1LongTailDataModule,
    RESISC45LongTailDataModule,
    So2SatLongTailDataModule,
    UCMercedLongTailDataModule,
)

__all__ = [
    "BandStatistics",
    "ChipFolder",
    "ChipFolderDataModule",
    "DataFileError",
    "EuroSATLongTailDataModule",
    "EuroSATS1LongTailDataModule",
    "LongTailDataModule",
    "RESISC45LongTailDataModule",
    "So2SatLongTailDataModule",
    "SyntheticEuroSATDataModule",
    "SyntheticSARDataModule",
    "SyntheticSpec",
    "UCMercedLongTailDataModule",
    "assign_groups",
    "class_counts",
    "compute_band_statistics",
    "generate_eurosat_like",
    "generate_sar_twin",
    "longtail_indices",
    "stratified_meta_split",
]
