"""Long-tailed classification datamodules on TorchGeo's ``NonGeoDataModule``.

One base class holds what every dataset shares: an optional long-tail subset of the training
split, class counts and groups, per-band statistics of the training split, the meta batches of
MetaPEFT's outer step (``meta_protocol``: a validation-split, holdout or resampled meta-val pool;
see :mod:`rs_metapeft.data.meta_split`), a sampler hook (TorchGeo's factory hard-codes shuffling)
and kornia augmentation on device. Subclasses only say how to build a split's dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from torchgeo.datamodules import NonGeoDataModule

from ...bands import declare_bands, resolve_bands
from ...choices import check_choice
from ..longtail import (
    LongtailProfile,
    class_counts,
    imbalance_ratio,
    log_class_counts,
    longtail_indices,
    longtail_targets,
)
from ..meta_split import MetaProtocol, MetaSampler
from ..resumable import ResumableDataLoader
from ..samplers import SamplerKind, build_sampler
from ..statistics import BandStatistics, cached_band_statistics, compute_band_statistics
from ..transforms import AugmentConfig, FillNodata, build_eval_transform, build_train_augmentation

__all__ = ["LongTailDataModule"]

log = logging.getLogger(__name__)


class _Chain:
    """Batch transforms applied in order (a plain callable, so it pickles and needs no device)."""

    def __init__(self, *steps: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.steps = steps

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        # Normalisation lives in the model (with the statistics it was trained on), never here:
        # TorchGeo's default mean 0 / std 255 would silently rescale multispectral data.
        for step in self.steps:
            batch = step(batch)
        return batch


def _chip_footprint(dataset: Dataset) -> dict[str, Any]:
    """``chip_size`` and ``resolution`` of a dataset's first chip (see ``data_description``).

    Read from the first sample's file header where the dataset lists its files (``samples``, as
    the chip folders and TorchGeo's image-folder datasets do), else from the first sample.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    samples = getattr(dataset, "samples", None)
    first = samples[0][0] if samples and isinstance(samples[0], tuple | list) else None
    if first is not None and Path(str(first)).is_file():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(first) as src:
                    out: dict[str, Any] = {"chip_size": [int(src.height), int(src.width)]}
                    if src.crs is not None:
                        out["resolution"] = [float(abs(src.res[0])), float(abs(src.res[1]))]
                    return out
        except RasterioError:
            pass
    try:
        image = dataset[0]["image"]
    except Exception:  # a dataset without samples to read: nothing to record
        return {}
    return {"chip_size": [int(image.shape[-2]), int(image.shape[-1])]}


def _targets(dataset: Dataset) -> list[int]:
    if isinstance(dataset, Subset):
        parent = _targets(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    return list(dataset.targets)  # type: ignore[attr-defined]


class LongTailDataModule(NonGeoDataModule):
    """Base datamodule for long-tailed chip classification.

    Args:
        bands: band names of the data's channels, in file order (resolved by the band registry).
        num_classes: number of classes.
        batch_size: training and evaluation batch size.
        num_workers: data-loading worker processes.
        imbalance_ratio: subsample the training split to this head/tail ratio; ``None`` keeps the
            data's own distribution.
        longtail_profile: ``"exponential"`` or ``"step"``.
        meta_fraction: ``holdout``: share of each training class held out for meta-validation;
            ``resample``: share of the training set drawn per outer step (0.2-0.3 in the
            paper); unused by ``val_split``.
        meta_batch_size: batch size of meta batches per process (default: ``batch_size``).
        meta_protocol: where MetaPEFT's meta-validation batches come from (see
            :mod:`rs_metapeft.data.meta_split`): ``val_split`` (default: the validation split,
            which a tuned search also selects on, so it is no longer an untouched selection
            set; training data untouched), ``holdout`` (a stratified ``meta_fraction`` of each
            class, always removed from inner training; the training counts and log prior
            describe the remaining images) or ``resample`` (a fresh random ``meta_fraction`` of
            the training set per outer step, as the paper; leaky: its meta-val images are also
            fitted). Meta-train batches (``model.meta.lookahead: meta_train``) come from the
            inner training set, or the resampled meta-train half.
        meta_balanced_val: draw class-balanced meta-val batches (equal counts per class present
            in the meta-val pool).
        meta_min_train_per_class: ``holdout`` never takes a class's last this many training
            images (a class with that many or fewer contributes nothing to the holdout).
        augment: flips and 90-degree rotations on training batches (no colour jitter: it would
            distort spectra).
        seed: seed of the long-tail subset and the meta split.
        sampler: training sampler: ``shuffle``, ``class_balanced``, ``sqrt`` or ``progressive``
            (instance to class-balanced over ``sampler_epochs``, default the trainer's
            ``max_epochs``).
        sampler_epochs: length of the progressive schedule.
        augment_options: flips, 90-degree rotations and random resized crop (see
            :class:`~rs_metapeft.data.transforms.AugmentConfig`).
        image_size: resize chips to this size on device (random resized crop in training when
            ``augment_options.resized_crop_scale`` is set); ``None`` keeps their size.
        stats_cache: folder where band statistics are cached as JSON, keyed by dataset and
            bands; ``None`` computes them every run.
        classes: use only these classes, in this label order (names as the dataset spells them,
            e.g. ``[Forest, River]``); images of the others are left out of every split, and
            ``num_classes`` follows the list's length. ``None`` (default) uses every class.
        custom_bands: bands of your own sensor, which ``bands`` (or the files' band
            descriptions) may then name: a list of ``{name, wavelength_nm, bandwidth_nm}``
            (optical) or ``{name, polarisation}`` (SAR: VV, VH, HH or HV), optionally with
            ``aliases`` and ``sensor``; the stems place them by wavelength or polarisation, and
            the model records them in its checkpoint (see
            :func:`~rs_metapeft.bands.declare_bands`).
    """

    #: Samples carry one class index as ``label`` (a multi-label datamodule: a multi-hot vector).
    multilabel = False

    def __init__(
        self,
        bands: list[str],
        num_classes: int,
        batch_size: int = 64,
        num_workers: int = 0,
        imbalance_ratio: float | None = None,
        longtail_profile: LongtailProfile = "exponential",
        meta_fraction: float = 0.2,
        meta_batch_size: int | None = None,
        meta_protocol: MetaProtocol = "val_split",
        meta_balanced_val: bool = True,
        meta_min_train_per_class: int = 5,
        augment: bool = True,
        seed: int = 0,
        sampler: SamplerKind = "shuffle",
        sampler_epochs: int | None = None,
        augment_options: AugmentConfig | None = None,
        image_size: int | None = None,
        stats_cache: str | None = None,
        classes: list[str] | None = None,
        custom_bands: list[dict[str, Any]] | None = None,
        **dataset_kwargs: Any,
    ) -> None:
        if "meta_disjoint" in dataset_kwargs:
            raise ValueError(
                "data.meta_disjoint was removed: a holdout meta set is now always left out of "
                "inner training. Drop the option and choose data.meta_protocol (val_split, "
                "holdout or resample)"
            )
        num_workers = _clamp_workers(num_workers)
        super().__init__(Dataset, batch_size=batch_size, num_workers=num_workers, **dataset_kwargs)
        #: What the data did differently from what the recipe asked (reported at the top).
        self.run_warnings: list[str] = []
        declare_bands(custom_bands)
        #: The recipe's band declarations (linked to the model, which records them).
        self.custom_bands = custom_bands
        resolve_bands(bands)  # fail at construction, naming the band, not mid-run
        self.bands = list(bands)
        self.num_classes = num_classes
        self.imbalance_ratio = imbalance_ratio
        self.longtail_profile = longtail_profile
        self.meta_fraction = meta_fraction
        self.meta_batch_size = meta_batch_size or batch_size
        # Fail at construction, naming the field, not at the first outer step.
        MetaSampler.check_options(meta_protocol, meta_fraction, self.meta_batch_size,
                                  meta_min_train_per_class)
        self.meta_protocol = meta_protocol
        self.meta_balanced_val = meta_balanced_val
        self.meta_min_train_per_class = meta_min_train_per_class
        self.meta_sampler: MetaSampler | None = None
        #: The datasets that the meta sampler's ``train`` and ``val`` indices point into.
        self.meta_datasets: dict[str, Dataset] = {}
        self.seed = seed
        # The command line checks the choices already; Python callers fail here, not mid-run.
        self.sampler = check_choice(sampler, SamplerKind, "data.sampler")
        check_choice(longtail_profile, LongtailProfile, "data.longtail_profile")
        self.sampler_epochs = sampler_epochs
        self.image_size = image_size
        self.stats_cache = stats_cache
        self.class_subset = [str(c) for c in classes] if classes is not None else None
        if self.class_subset is not None and len(self.class_subset) != num_classes:
            log.info("data.classes names %d classes; data.num_classes follows it (was %d)",
                     len(self.class_subset), num_classes)
            self.num_classes = len(self.class_subset)
        if isinstance(augment_options, dict):
            augment_options = AugmentConfig(**augment_options)
        self._augment = (
            build_train_augmentation(image_size, augment_options)
            if augment
            else build_eval_transform(image_size)
        )
        self._eval = build_eval_transform(image_size)
        self._set_augmentation(FillNodata())
        self.class_names: list[str] = []
        self.train_counts: list[int] = []
        #: Images per class of the training split before a meta holdout is taken out: the
        #: data's long tail, which decides the report's many / medium / few groups (so a holdout
        #: does not move a class across a group boundary). Equal to ``train_counts`` otherwise.
        self.group_counts: list[int] = []
        self.band_stats: BandStatistics | None = None
        self.meta_indices: tuple[np.ndarray, np.ndarray] | None = None

    def _set_augmentation(self, fill: FillNodata) -> None:
        self.train_aug = _Chain(fill, self._augment)
        self.aug = _Chain(fill, self._eval)

    # -- what subclasses provide -------------------------------------------------------------
    def make_dataset(self, split: str) -> Dataset:
        """Build the dataset of one split (``train``, ``val`` or ``test``)."""
        raise NotImplementedError

    def split_dataset(self, split: str) -> Dataset:
        """The dataset of one split, limited to ``data.classes`` when that is set."""
        dataset = self.make_dataset(split)
        names = [str(n) for n in getattr(_base(dataset), "classes", [])]
        if self.class_subset is None or names == self.class_subset:
            return dataset
        return self._class_subset(dataset, split)

    def _class_subset(self, dataset: Dataset, split: str) -> Dataset:
        """The ``data.classes`` part of a split whose classes differ from it."""
        return _ClassSubset(dataset, self.class_subset, split)

    def label_counts(self, dataset: Dataset) -> list[int]:
        """Samples of each class in one split's dataset (what ``train_counts`` is for training)."""
        return class_counts(_targets(dataset), self.num_classes)

    def dataset_key(self) -> str:
        """Identifies the training data for the statistics cache (override to add settings)."""
        return f"{type(self).__name__}:{Path(str(getattr(self, 'root', ''))).resolve()}"

    # -- setup -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Build the splits; on ``fit``, also counts, statistics and the meta split."""
        if stage == "fit":
            self.train_dataset = self._build_train()
            self.val_dataset = self.split_dataset("val")
            self._build_meta_sampler()  # before anything indexes an empty validation split
            self._check_classes(self.val_dataset, "val")
        elif stage == "validate":
            self.val_dataset = self.split_dataset("val")
            self._check_classes(self.val_dataset, "val")
        elif stage == "test":
            self.test_dataset = self.split_dataset("test")
            self._check_classes(self.test_dataset, "test")

    def _check_classes(self, dataset: Dataset, split: str) -> None:
        names = list(getattr(_base(dataset), "classes", []))
        if len(names) != self.num_classes:
            raise ValueError(
                f"the {split} split has {len(names)} classes ({', '.join(names)}) but "
                f"data.num_classes is {self.num_classes}; set data.num_classes to {len(names)}"
            )
        self.class_names = names
        self._check_band_count(dataset, split)

    def _check_band_count(self, dataset: Dataset, split: str) -> None:
        channels = dataset[0]["image"].shape[0]
        if channels != len(self.bands):
            raise ValueError(
                f"the {split} images have {channels} channels but data.bands lists "
                f"{len(self.bands)} ({', '.join(self.bands)}); make data.bands match the data"
            )

    def _build_train(self) -> Dataset:
        dataset = self.split_dataset("train")
        self._check_classes(dataset, "train")
        self.run_warnings = []
        if self.imbalance_ratio is not None:
            keep = longtail_indices(
                _targets(dataset), self.imbalance_ratio, self.longtail_profile, self.seed
            )
            self._check_imbalance(_targets(dataset), _targets(Subset(dataset, keep.tolist())))
            dataset = Subset(dataset, keep.tolist())
        self.meta_sampler, self.meta_datasets, self.meta_indices = None, {}, None
        self.group_counts = class_counts(_targets(dataset), self.num_classes)
        if self.meta_protocol == "holdout":
            # The holdout is meta-validation only and never reaches the inner step, so the
            # counts, log prior and band statistics below describe the images trained on.
            sampler = self._new_meta_sampler(_targets(dataset))
            self._set_meta_sampler(sampler, {"train": dataset, "val": dataset})
            dataset = Subset(dataset, sampler.train_indices.tolist())
        targets = _targets(dataset)
        self.train_counts = class_counts(targets, self.num_classes)
        self._refuse_empty_classes("images of classes")
        log_class_counts(self.class_names, self.train_counts, "train")
        self._fit_band_statistics(dataset, np.asarray(targets, dtype=np.int64))
        return dataset

    def _refuse_empty_classes(self, what: str) -> None:
        """Fail, naming them, when classes have no training samples (``train_counts`` is 0)."""
        empty = [n for n, c in zip(self.class_names, self.train_counts, strict=True) if c == 0]
        if empty:
            kept = [n for n in self.class_names if n not in empty]
            raise ValueError(
                f"the training split has no {what} {empty}; add training images of "
                f"these classes, or leave them out with data.classes: {json.dumps(kept)} (the "
                "classes to use, in label order)"
            )

    def _fit_band_statistics(self, dataset: Dataset, labels: np.ndarray) -> None:
        """Per-band statistics of the training images, cached under the data and its labels."""
        fingerprint = hashlib.sha256(
            np.ascontiguousarray(labels, dtype=np.int64).tobytes()
        ).hexdigest()[:16]
        key = (
            f"{self.dataset_key()}|ir={self.imbalance_ratio}|{self.longtail_profile}|"
            f"seed={self.seed}|n={len(labels)}|targets={fingerprint}"
        )
        self.band_stats = cached_band_statistics(
            self.stats_cache, key, self.bands,
            lambda: compute_band_statistics(
                (b["image"] for b in self._plain_loader(dataset, shuffle=False)), self.bands
            ),
        )
        self._set_augmentation(FillNodata(self.band_stats.mean))

    def _check_imbalance(self, full: list[int], kept: list[int]) -> None:
        """Say so when the long-tail subset's imbalance ratio is not the one asked for, and why."""
        asked = float(self.imbalance_ratio)
        counts = class_counts(full, self.num_classes)
        got = imbalance_ratio(class_counts(kept, self.num_classes))
        if abs(got - asked) <= 0.05 * asked:
            return
        wanted = longtail_targets(counts, asked, self.longtail_profile)
        short = [f"{name} ({have} < {want})" for name, have, want
                 in zip(self.class_names, counts, wanted, strict=True) if have < want]
        why = (f"classes {', '.join(short)} have fewer images than their target counts (the "
               f"profile scales down from the largest class's {max(counts)}, by label order)"
               if short else "the target counts round to whole images")
        message = (f"data.imbalance_ratio {asked:g} was asked for but the training subset has "
                   f"{got:.1f}: {why}. Reorder the classes (data.classes) so the largest come "
                   "first, or ask for a ratio the data can give")
        warnings.warn(message, stacklevel=2)
        self.run_warnings.append(message)

    def _new_meta_sampler(self, targets: list[int],
                          val_targets: list[int] | None = None) -> MetaSampler:
        # Under DDP every rank draws the same global meta batch and keeps its own share, so one
        # sampler state (saved by rank 0) resumes every rank.
        world = self.trainer.world_size if self.trainer is not None else 1
        return MetaSampler(targets, self.meta_protocol, self.meta_fraction,
                           self.meta_batch_size * world, self.meta_balanced_val, self.seed,
                           self.meta_min_train_per_class, val_targets)

    def _set_meta_sampler(self, sampler: MetaSampler, datasets: dict[str, Dataset]) -> None:
        self.meta_sampler, self.meta_datasets = sampler, datasets
        self.meta_indices = (sampler.parts["train"], sampler.parts["val"])
        pending, self._meta_sampler_state = getattr(self, "_meta_sampler_state", None), None
        if pending is not None:
            sampler.load_state_dict(pending)

    def state_dict(self) -> dict[str, Any]:
        """The meta sampler's position; Lightning stores it in every checkpoint.

        Returns:
            ``{"meta_sampler": ...}`` once ``setup("fit")`` has built the sampler, else ``{}``.
        """
        if self.meta_sampler is None:
            return {}
        return {"meta_sampler": self.meta_sampler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the meta sampler's draws where a checkpoint left them.

        Lightning calls this after ``setup("fit")``; before it, the state waits for the sampler.

        Raises:
            ValueError: the checkpoint's meta protocol or split differs from this run's.
        """
        state = state_dict.get("meta_sampler")
        if state is None:
            return
        if self.meta_sampler is None:
            self._meta_sampler_state = state
        else:
            self.meta_sampler.load_state_dict(state)

    def _build_meta_sampler(self) -> None:
        """The ``val_split`` and ``resample`` samplers (``holdout``'s shapes the training set)."""
        if self.meta_protocol == "holdout":
            return
        train = self.train_dataset
        if self.meta_protocol == "resample":
            self._set_meta_sampler(self._new_meta_sampler(self._meta_labels(train)),
                                   {"train": train, "val": train})
            return
        val = self.val_dataset
        if val is None or len(val) == 0:
            raise ValueError(
                "data.meta_protocol val_split draws meta-val batches from the validation split, "
                "but it has no images; add validation images or use data.meta_protocol: holdout"
            )
        sampler = self._new_meta_sampler(self._meta_labels(train), self._meta_labels(val))
        self._set_meta_sampler(sampler, {"train": train, "val": val})

    def _meta_labels(self, dataset: Dataset) -> Any:
        """The labels the meta sampler draws by: one class per sample here."""
        return _labels(dataset)

    def data_description(self) -> dict[str, Any]:
        """The training data's CRS, nodata value, SAR conversion, chip size and resolution.

        Recorded in checkpoints (the task's ``data_info``) so that prediction refuses a scene in
        another CRS, masks the nodata value that training masked, converts SAR values to dB as
        training did, and tiles a scene into chips of the training chips' footprint on the
        ground (then resized to the model's input, as training resized them).

        Returns:
            ``crs`` (e.g. ``"EPSG:32632"``), ``nodata`` and ``nodata_from_recipe`` (``data.nodata``
            overrode the files' own), ``preprocessing`` (``SARPreprocessing.to_dict()``),
            ``chip_size`` (``[height, width]`` in pixels of the first training chip, before any
            resize) and ``resolution`` (``[x, y]`` ground size of its pixels in CRS units, for
            georeferenced chips), each only where known; ``{}`` before ``setup("fit")``.
        """
        dataset = getattr(self, "train_dataset", None)
        while isinstance(dataset, (Subset, _ClassSubset)):
            dataset = dataset.dataset
        out: dict[str, Any] = {}
        if getattr(dataset, "data_crs", None) is not None:
            out["crs"] = dataset.data_crs
        if getattr(dataset, "declared_nodata", None) is not None:
            out["nodata"] = float(dataset.declared_nodata)
            out["nodata_from_recipe"] = getattr(dataset, "nodata", None) is not None
        if getattr(dataset, "preprocessing", None) is not None:
            out["preprocessing"] = dataset.preprocessing.to_dict()
        if dataset is not None:
            out.update(_chip_footprint(dataset))
        return out

    # -- loaders -----------------------------------------------------------------------------
    def train_sampler(self, dataset: Dataset) -> Sampler | None:
        """The training sampler named by ``data.sampler``; ``None`` shuffles uniformly."""
        epochs = self.sampler_epochs
        if epochs is None:
            trainer = getattr(self, "trainer", None)
            max_epochs = getattr(trainer, "max_epochs", None) if trainer is not None else None
            epochs = max_epochs if max_epochs and max_epochs > 0 else 1
        return build_sampler(self.sampler, _targets(dataset), total_epochs=epochs, seed=self.seed)

    def _plain_loader(self, dataset: Dataset, shuffle: bool, batch_size: int | None = None,
                      drop_last: bool = False, loader_cls: type = DataLoader) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return loader_cls(
            dataset,
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            drop_last=drop_last,
            generator=generator,
            persistent_workers=self.num_workers > 0,
        )

    def _dataloader_factory(self, split: str) -> DataLoader:
        dataset = self._valid_attribute(f"{split}_dataset", "dataset")
        if split != "train":
            return self._plain_loader(dataset, shuffle=False)
        sampler = self.train_sampler(dataset)
        if sampler is None:
            # Keep a full last batch only when the split is big enough to drop it.
            return self._plain_loader(dataset, True, drop_last=len(dataset) > self.batch_size,
                                      loader_cls=ResumableDataLoader)
        # A generator of its own: without one, every epoch's start draws the loader's base seed
        # from the global generator, which a mid-epoch resume would then draw at another time.
        return ResumableDataLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            collate_fn=self.collate_fn, drop_last=len(dataset) > self.batch_size,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def meta_batch(self, part: str, device: torch.device | str = "cpu") -> dict[str, Any]:
        """Draw the next meta-train or meta-val batch, on ``device``.

        Draws come from :attr:`meta_sampler` (see :mod:`rs_metapeft.data.meta_split`), whose
        state travels in checkpoints, so a resumed run sees the same batches. Meta-val batches
        get the evaluation transform (no augmentation, as the validation loss they stand for);
        meta-train batches the training augmentation, as the inner steps they stand for.

        Args:
            part: ``"train"`` or ``"val"``.
            device: where the batch goes.

        """
        if self.meta_sampler is None:
            raise RuntimeError("meta batches need setup('fit') first")
        indices = self.meta_sampler.draw(part)
        if self.trainer is not None and self.trainer.world_size > 1:
            indices = indices[self.trainer.global_rank::self.trainer.world_size]
        dataset = self.meta_datasets[part]
        batch = self.collate_fn([dataset[int(i)] for i in indices])
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        return self.aug(batch) if part == "val" else self.train_aug(batch)

    def new_meta_round(self) -> None:
        """Start an outer step: ``resample`` draws a fresh meta set (the others keep theirs)."""
        if self.meta_sampler is None:
            raise RuntimeError("meta batches need setup('fit') first")
        self.meta_sampler.new_round()

    def meta_batches(self, part: str, device: torch.device) -> Iterator[dict[str, Any]]:
        """Endless batches of the meta-train or meta-val part (see :meth:`meta_batch`).

        Successive batches differ (the released code re-created the iterator and always saw the
        first batch).

        Args:
            part: ``"train"`` or ``"val"``.
            device: where the batches go.

        Yields:
            Batches as dicts with ``image`` and ``label``.

        """
        if self.meta_sampler is None:
            raise RuntimeError("meta_batches needs setup('fit') first")
        while True:
            yield self.meta_batch(part, device)


def _labels(dataset: Dataset) -> list[int]:
    """Labels of a split: its ``targets``, or (without them) read sample by sample."""
    try:
        return _targets(dataset)
    except AttributeError:
        return [int(dataset[i]["label"]) for i in range(len(dataset))]  # type: ignore[arg-type]


class _ClassSubset(Dataset):
    """The images of some classes of a dataset, relabelled ``0 .. k-1`` in the order given."""

    def __init__(self, dataset: Dataset, classes: list[str], split: str) -> None:
        names = _subset_names(dataset, classes, split)
        relabel = {names.index(c): i for i, c in enumerate(classes)}
        labels = _labels(dataset)
        self.dataset = dataset
        self.indices = [i for i, y in enumerate(labels) if y in relabel]
        self.targets = [relabel[labels[i]] for i in self.indices]
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[self.indices[index]])
        sample["label"] = torch.tensor(self.targets[index])
        return sample


def _subset_names(dataset: Dataset, classes: list[str], split: str) -> list[str]:
    """The dataset's class names, after checking that ``data.classes`` names only those."""
    names = [str(n) for n in getattr(_base(dataset), "classes", [])]
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(
            f"data.classes: {unknown} are not classes of the {split} split; choose among "
            f"{', '.join(names)}"
        )
    return names


def _clamp_workers(num_workers: int) -> int:
    """``num_workers``, at most the CPU cores this process may use (one warning if lowered)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if num_workers <= cores:
        return num_workers
    # One message here instead of PyTorch's warning on every loader that is built.
    warnings.warn(f"data.num_workers {num_workers} is more than the {cores} CPU cores this "
                  f"process may use; using {cores}", stacklevel=3)
    return cores


def _base(dataset: Dataset) -> Dataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset
