"""The built-in synthetic Sentinel-1 (VV, VH) twin, read as a chip folder."""

from __future__ import annotations

from typing import Any

from ..synthetic import SAR_BANDS, generate_sar_twin
from .chip_folder import ChipFolderDataModule
from .synthetic import SyntheticDataMixin

__all__ = ["SyntheticSARDataModule"]


class SyntheticSARDataModule(SyntheticDataMixin, ChipFolderDataModule):
    """The built-in synthetic Sentinel-1 (VV, VH) twin, generated on first use.

    Args:
        root: where the generated files go.
        bands: band names in file order (the twin's files hold VV, VH).
        **kwargs: the generator's options (:class:`.SyntheticDataMixin`: ``num_classes``,
            ``max_per_class`` ...) and :class:`LongTailDataModule` options.
    """

    generate = staticmethod(generate_sar_twin)

    def __init__(self, root: str = "data/demo_s1", bands: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(root=root, bands=list(bands or SAR_BANDS), **kwargs)
