"""SAR ship chips in the style of FUSAR-Ship, OpenSARShip and the FUSRS benchmark.

Single-band amplitude (or intensity) chips stored as PNG or TIFF, one class per folder or listed in
a ``<path> <label>`` file. Conversion to decibels and clipping are explicit preprocessing
settings (:class:`SARPreprocessing`, which the GeoTIFF-folder data takes too), applied when a
chip is read and recorded (:meth:`SARPreprocessing.to_dict`) in the statistics cache key and the
checkpoint, and applied again at prediction, so a model never meets differently scaled data
unnoticed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..choices import check_choice
from .folder import DataFileError, GeoTiffFolder

__all__ = ["SARPreprocessing", "SARShipChips"]


#: What SAR files hold: amplitude, intensity or decibels (``preprocessing.input``).
SARInput = Literal["amplitude", "intensity", "db"]


@dataclass(frozen=True)
class SARPreprocessing:
    """How stored pixel values become model inputs.

    Attributes:
        input: what the files hold: ``amplitude`` (dB = 20 log10 A), ``intensity``
            (dB = 10 log10 I) or ``db`` (already decibels).
        to_db: convert linear values to dB.
        clip_db: ``[low, high]`` clipping after conversion, or ``None``.
        floor: smallest linear value before the logarithm (zero amplitude has no dB value).
    """

    input: SARInput = "amplitude"
    to_db: bool = True
    clip_db: tuple[float, float] | None = None
    floor: float = 1e-6

    def __post_init__(self) -> None:
        check_choice(self.input, SARInput, "preprocessing.input")
        if self.input == "db" and self.to_db:
            raise ValueError("preprocessing: input is already in dB; set to_db: false")
        if self.clip_db is not None and not self.clip_db[0] < self.clip_db[1]:
            raise ValueError(
                f"preprocessing.clip_db must be [low, high] with low < high, got {self.clip_db}"
            )

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Apply the conversion and clipping to a float array (NaN stays NaN)."""
        out = array
        if self.to_db:
            factor = 20.0 if self.input == "amplitude" else 10.0
            with np.errstate(invalid="ignore"):
                out = factor * np.log10(np.maximum(out, self.floor))
        if self.clip_db is not None:
            out = np.clip(out, *self.clip_db)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of the preprocessing."""
        d = asdict(self)
        d["clip_db"] = list(self.clip_db) if self.clip_db is not None else None
        return d


class SARShipChips(GeoTiffFolder):
    """Single-band SAR ship chips (PNG or TIFF), class from the folder or a list file.

    Args:
        root: dataset folder (``root/<class>/*.png|tif``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        bands: the polarisation's name (one band), default ``["VV"]``.
        preprocessing: dB conversion and clipping.
        **kwargs: :class:`~rs_metapeft.data.folder.GeoTiffFolder` options (``split_files``,
            ``classes``, ``on_bad_file`` ...).
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        bands: list[str] | None = None,
        preprocessing: SARPreprocessing | None = None,
        **kwargs: Any,
    ) -> None:
        bands = list(bands or ["VV"])
        if len(bands) != 1:
            raise ValueError(
                f"SAR ship chips are single-band; data.bands must name one band, got {bands}"
            )
        kwargs.setdefault("extensions", (".png", ".tif", ".tiff"))
        super().__init__(root, split=split, bands=bands,
                         preprocessing=preprocessing or SARPreprocessing(), **kwargs)

    def _read(self, path: Path) -> np.ndarray:
        array = super()._read(path)  # converted already (dB conversion is elementwise)
        if array.ndim == 3 and array.shape[0] in (3, 4) and path.suffix.lower() == ".png":
            # Greyscale quick-looks are sometimes saved as RGB(A) PNG with equal colour planes.
            if not np.array_equal(array[0], array[1], equal_nan=True):
                raise DataFileError(f"{path} is a colour PNG; SAR ship chips must be single-band")
            array = array[:1]
        return array
