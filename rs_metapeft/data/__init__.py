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

__all__ = [
    "BandStatistics",
    "ChipFolder",
    "ChipFolderDataModule",
    "DataFileError",
    "EuroSATLongTailDataModule",
    "LongTailDataModule",
    "SyntheticEuroSATDataModule",
    "SyntheticSARDataModule",
    "SyntheticSpec",
    "assign_groups",
    "class_counts",
    "compute_band_statistics",
    "generate_eurosat_like",
    "generate_sar_twin",
    "longtail_indices",
    "stratified_meta_split",
]
