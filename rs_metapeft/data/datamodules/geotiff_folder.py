"""Users' own GeoTIFF chips: class folders or a CSV, any band count and dtype."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ...io import atomic_write_text
from ..folder import DataFileError, GeoTiffFolder, OnBadFile
from ..sar import SARPreprocessing
from .base import LongTailDataModule, _base

__all__ = ["GeoTiffFolderDataModule"]

log = logging.getLogger(__name__)


class GeoTiffFolderDataModule(LongTailDataModule):
    """Your own GeoTIFF chips (see :class:`~rs_metapeft.data.folder.GeoTiffFolder`).

    Every split is scanned when it is built (before training starts), so a corrupt, truncated,
    wrong-band-count or nodata-only chip stops the run at once with the file's name, or with
    ``on_bad_file: skip`` is dropped with a warning and a count.

    Without split lists or a CSV split column the chips are split by a seeded stratified split
    (``val_fraction``, ``test_fraction``, ``split_seed``). On ``setup("fit")`` with a trainer the
    split is recorded in the run folder (the trainer's ``log_dir``, beside ``report.json``) as
    ``data_split/{train,val,test}.txt``, lines ``<path> <class>`` that ``split_files`` reads back.

    Args:
        root: dataset folder (``root/<class>/*.tif``).
        bands: band names in file order; ``None`` takes the first file's band descriptions.
        num_classes: number of classes; ``None`` counts them (folders, or ``classes``, or the CSV).
        csv_file: optional ``path,label[,split]`` CSV.
        classes: the classes to use, in label order (a subset of the folders or CSV labels);
            default: all.
        split_files: per split, a list file (``<path> [label]`` lines).
        nodata: nodata value overriding the files' own.
        on_bad_file: ``error`` or ``skip``.
        check_test_split: on ``setup("fit")``, index the test split too, so that a missing test
            list, or test images that are also training images, fail before training rather than
            after it (``rs-metapeft fit`` tests at the end).
        val_fraction: without split lists, share of every class for validation.
        test_fraction: without split lists, share of every class for test.
        split_seed: without split lists, the seed of the split (kept apart from ``seed``, so
            runs with different training seeds test on the same images).
        allow_train_test_overlap: report test metrics even when test images are also training
            images (a warning says how many). Off by default: such metrics measure memory, not
            generalisation, so the run stops before training instead.
        preprocessing: SAR conversion of the chips as they are read, e.g. ``{input:
            intensity}`` for dual-polarisation chips in linear power (10 log10 to dB) or
            ``{input: amplitude}`` (20 log10), optionally ``clip_db: [-30, 5]`` (see
            :class:`~rs_metapeft.data.sar.SARPreprocessing`). Recorded in the checkpoint and
            applied again by ``predict-chips`` / ``predict-scene``. ``None`` (default) reads the
            values as stored.
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
        on_bad_file: OnBadFile = "error",
        check_test_split: bool = True,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        allow_train_test_overlap: bool = False,
        preprocessing: SARPreprocessing | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(preprocessing, dict):
            preprocessing = SARPreprocessing(**preprocessing)
        self.root = root
        self.check_test_split = check_test_split
        self.allow_train_test_overlap = allow_train_test_overlap
        self.folder_kwargs: dict[str, Any] = dict(
            csv_file=csv_file, classes=classes, split_files=split_files, nodata=nodata,
            on_bad_file=on_bad_file, val_fraction=val_fraction, test_fraction=test_fraction,
            split_seed=split_seed, preprocessing=preprocessing,
        )
        if bands is None or num_classes is None:
            # Index one split without reading pixels, for the band names and the class count.
            probe = self._index("train", bands)
            bands = list(bands or probe.bands)
            num_classes = num_classes or len(probe.classes)
        super().__init__(bands=bands, num_classes=num_classes, **kwargs)

    def _index(self, split: str, bands: list[str] | None) -> GeoTiffFolder:
        """One split's chips, indexed without reading pixels."""
        return self.dataset_type(self.root, split=split, bands=bands, scan=False,
                                 **self.folder_kwargs)

    def _try_index(self, split: str) -> GeoTiffFolder | None:
        """The split's index, or ``None`` where the data has no such split (e.g. test-only data)."""
        try:
            return self._index(split, self.bands)
        except DataFileError:
            return None

    def dataset_key(self) -> str:
        """Dataset, root and reading options."""
        options = sorted(self.folder_kwargs.items())
        return f"{super().dataset_key()}:{options}"

    def setup(self, stage: str) -> None:
        """Build the splits; first check that the test split holds no training image.

        On ``fit`` (with ``check_test_split``) the test split is indexed before any pixel is read,
        so a missing test list or an overlap stops the run before training; on ``test`` the
        training split is indexed for the same check, where the data has one.
        """
        test_index = None
        if stage == "fit" and self.check_test_split:
            test_index = self._index("test", self.bands)
            self._check_overlap(self._index("train", self.bands), test_index)
        elif stage == "test" and (train_index := self._try_index("train")) is not None:
            self._check_overlap(train_index, self._index("test", self.bands))
        super().setup(stage)
        if stage == "fit":
            self._record_split(test_index)

    def _check_overlap(self, train: GeoTiffFolder, test: GeoTiffFolder) -> None:
        trained = {path for path, _ in train.samples}
        shared = [path for path, _ in test.samples if path in trained]
        if not shared:
            return
        what = (f"{len(shared)} of the {len(test)} test images of {self.root} are also training "
                f"images (first: {shared[0]})")
        if not self.allow_train_test_overlap:
            raise DataFileError(
                f"{what}; test metrics on them would measure memory, not generalisation. Give "
                "the test split its own images (split lists or the CSV's split column), drop "
                "the lists to have the chips split by data.split_seed, or set "
                "data.allow_train_test_overlap: true to report them anyway"
            )
        warnings.warn(f"{what}; data.allow_train_test_overlap is set, so the test metrics "
                      "include images the model was trained on", stacklevel=3)

    def _record_split(self, test_index: GeoTiffFolder | None) -> None:
        """Write each split's files into the run folder (rank 0; atomically, file by file)."""
        trainer = self.trainer
        if trainer is None:
            return
        # log_dir is a collective under DDP (rank 0 broadcasts it): every rank asks for it.
        folder = Path(trainer.log_dir or trainer.default_root_dir) / "data_split"
        if not trainer.is_global_zero:
            return

        folder.mkdir(parents=True, exist_ok=True)
        splits = {"train": _base(self.train_dataset), "val": _base(self.val_dataset),
                  "test": test_index or self._try_index("test")}
        for split, dataset in splits.items():
            if isinstance(dataset, GeoTiffFolder):
                lines = [f"{dataset.relative_path(path)} {dataset.classes[label]}\n"
                         for path, label in dataset.samples]
                atomic_write_text(folder / f"{split}.txt", "".join(lines))
        log.info("data split recorded in %s", folder)

    def make_dataset(self, split: str) -> Dataset:
        """The chips of one split, scanned."""
        return self.dataset_type(self.root, split=split, bands=self.bands, **self.folder_kwargs)
