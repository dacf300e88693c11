"""NWPU-RESISC45 (45 RGB scene classes) via TorchGeo's ``RESISC45``."""

from __future__ import annotations

from typing import Any

from torchgeo.datasets import RESISC45

from .rgb_scenes import _RGBSceneDataModule

__all__ = ["RESISC45LongTailDataModule"]


class RESISC45LongTailDataModule(_RGBSceneDataModule):
    """NWPU-RESISC45 (45 scene classes, 256 x 256 RGB) via ``torchgeo.datasets.RESISC45``.

    Args:
        root: where ``NWPU-RESISC45/`` and ``resisc45-<split>.txt`` are.
        num_classes: 45 for the real data.
        bands: channel names (default ``[R, G, B]``).
        download: download the data if missing.
        **kwargs: :class:`LongTailDataModule` options (e.g. ``image_size: 64``).
    """

    torchgeo_class = RESISC45

    def __init__(self, root: str = "data/resisc45", num_classes: int = 45,
                 bands: list[str] | None = None, download: bool = False, **kwargs: Any) -> None:
        super().__init__(root=root, num_classes=num_classes, bands=bands, download=download,
                         **kwargs)
