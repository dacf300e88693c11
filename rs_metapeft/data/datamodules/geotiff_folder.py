"""Users' own GeoTIFF chips: class folders or a CSV, any band count and dtype."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ..folder import GeoTiffFolder
from .base import LongTailDataModule

__all__ = ["GeoTiffFolderDataModule"]


class GeoTiffFolderDataModule(LongTailDataModule):
    """Your own GeoTIFF chips (see :class:`~rs_metapeft.data.folder.GeoTiffFolder`).

    Every split is scanned when it is built (before training starts), so a corrupt, truncated,
    wrong-band-count or nodata-only chip stops the run at once with the file's name, or with
    ``on_bad_file: skip`` is dropped with a warning and a count.

    Args:
        root: dataset folder (``root/<class>/*.tif``).
        bands: band names in file order; ``None`` takes the first file's band descriptions.
        num_classes: number of classes; ``None`` counts them (folders, or ``classes``, or the CSV).
        csv_file: optional ``path,label[,split]`` CSV.
        classes: class list (label order).
        split_files: per split, a list file (``<path> [label]`` lines).
        nodata: nodata value overriding the files' own.
        on_bad_file: ``error`` or ``skip``.
        check_test_split: on ``setup("fit")``, index the test split too, so that a missing test
            list fails before training rather than after it (``rs-metapeft fit`` tests at the end).
        **kwargs: :class:`LongTailDataModule` options.
    """

    dataset_type: type[GeoTiffFolder] = GeoTiffFolder

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        num_classes: int | None = None,
        csv_file: str | None = None,
        classes: list[str] | None = None,
        split_files: dict[str, str] | None = None,
        nodata: float | None = None,
        on_bad_file: str = "error",
        check_test_split: bool = True,
        **kwargs: Any,
    ) -> None:
        self.root = root
        self.check_test_split = check_test_split
        self.folder_kwargs: dict[str, Any] = dict(
            csv_file=csv_file, classes=classes, split_files=split_files, nodata=nodata,
            on_bad_file=on_bad_file,
        )
        if bands is None or num_classes is None:
            # Index one split without reading pixels, for the band names and the class count.
            probe = self.dataset_type(root, split="train", bands=bands, scan=False,
                                      **self._extra_kwargs(), **self.folder_kwargs)
            bands = list(bands or probe.bands)
            num_classes = num_classes or len(probe.classes)
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {}

    def dataset_key(self) -> str:
        """Dataset, root and reading options."""
        options = sorted(self.folder_kwargs.items())
        return f"{super().dataset_key()}:{options}:{self._extra_kwargs()}"

    def setup(self, stage: str) -> None:
        """Build the splits; on ``fit``, first check that the test split can be indexed."""
        if stage == "fit" and self.check_test_split:
            self.dataset_type(self.root, split="test", bands=self.bands, scan=False,
                              **self._extra_kwargs(), **self.folder_kwargs)
        super().setup(stage)

    def make_dataset(self, split: str) -> Dataset:
        """The chips of one split, scanned."""
        return self.dataset_type(self.root, split=split, bands=self.bands,
                                 **self._extra_kwargs(), **self.folder_kwargs)
