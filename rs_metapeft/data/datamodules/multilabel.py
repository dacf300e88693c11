"""Multi-label scene datamodules: what they share on top of :class:`LongTailDataModule`.

A sample's ``label`` is a multi-hot int64 tensor of shape ``[num_classes]`` (a scene carries every
land cover it contains; a loss wants it as float). The long tail is one of label frequencies:
:attr:`train_counts` holds, per label, the training samples that carry it. Datasets expose their
labels as an ``(N, K)`` ``label_matrix`` (read without reading any image); ``data.classes`` keeps
some labels' columns.

Options that only make sense for one label per sample are refused at construction:
``imbalance_ratio`` (a multi-label set cannot be thinned label by label) and the class-aware
samplers. MetaPEFT's meta batches take every ``meta_protocol`` (see
:class:`~rs_metapeft.data.meta_split.MultiLabelMetaSampler`): the meta-val batches are
label-balanced, and never fitted by the inner steps (``val_split``, ``holdout``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler, Subset

from ..longtail import log_class_counts
from ..meta_split import MultiLabelMetaSampler
from .base import LongTailDataModule, _subset_names

__all__ = ["MultiLabelDataModule", "label_matrix"]


def label_matrix(dataset: Dataset) -> np.ndarray:
    """The multi-hot labels of every sample of a dataset, ``(N, K)`` uint8.

    Read from the dataset's ``label_matrix`` (through subsets), else sample by sample.
    """
    if isinstance(dataset, Subset):
        return label_matrix(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    own = getattr(dataset, "label_matrix", None)
    if own is not None:
        return np.asarray(own, dtype=np.uint8)
    rows = [np.asarray(dataset[i]["label"]) for i in range(len(dataset))]  # type: ignore[arg-type]
    return np.stack(rows).astype(np.uint8)


class MultiLabelDataModule(LongTailDataModule):
    """Base datamodule for multi-label scene classification.

    Takes :class:`LongTailDataModule`'s options, except that ``imbalance_ratio`` must stay
    unset and ``sampler`` ``shuffle``. After ``setup("fit")``, :attr:`train_counts` are the label
    frequencies of the training split, :attr:`class_names` the label names and :attr:`bands`
    the input's bands.

    Args:
        **kwargs: :class:`LongTailDataModule` options.
    """

    #: Samples carry a multi-hot ``label`` of shape ``[num_classes]``.
    multilabel = True

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("imbalance_ratio") is not None:
            raise ValueError(
                "data.imbalance_ratio thins a single-label training split class by class; a "
                "multi-label scene carries several labels, so it cannot be thinned so. Drop "
                "data.imbalance_ratio (the data keeps its own label frequencies)"
            )
        if kwargs.get("sampler", "shuffle") != "shuffle":
            raise ValueError(
                f"data.sampler {kwargs['sampler']!r} draws by one class per sample; multi-label "
                "data is shuffled (data.sampler: shuffle)"
            )
        super().__init__(**kwargs)

    def _class_subset(self, dataset: Dataset, split: str) -> Dataset:
        """The ``data.classes`` labels of a split (columns of its multi-hot labels)."""
        return _LabelSubset(dataset, self.class_subset, split)

    def label_counts(self, dataset: Dataset) -> list[int]:
        """Samples carrying each label in one split's dataset (label frequencies)."""
        return label_matrix(dataset).sum(0).astype(int).tolist()

    def _build_train(self) -> Dataset:
        dataset = self.split_dataset("train")
        self._check_classes(dataset, "train")
        self.run_warnings = []
        self.meta_sampler, self.meta_datasets, self.meta_indices = None, {}, None
        if self.meta_protocol == "holdout":
            # As for single-label data: the holdout is meta-validation only, so the label
            # frequencies and band statistics below describe the samples trained on.
            sampler = self._new_meta_sampler(label_matrix(dataset))
            self._set_meta_sampler(sampler, {"train": dataset, "val": dataset})
            dataset = Subset(dataset, sampler.train_indices.tolist())
        labels = label_matrix(dataset)
        self.train_counts = labels.sum(0).astype(int).tolist()  # as label_counts(), read once
        #: Training samples (the denominator of the label frequencies).
        self.train_samples = int(labels.shape[0])
        self._refuse_empty_classes("images with labels")
        log_class_counts(self.class_names, self.train_counts, "train")
        self._fit_band_statistics(dataset, labels)
        return dataset

    def _new_meta_sampler(self, labels: np.ndarray,  # type: ignore[override]
                          val_labels: np.ndarray | None = None) -> MultiLabelMetaSampler:
        # The global meta batch under DDP, as for single-label data.
        world = self.trainer.world_size if self.trainer is not None else 1
        return MultiLabelMetaSampler(labels, self.meta_protocol, self.meta_fraction,
                                     self.meta_batch_size * world, self.meta_balanced_val,
                                     self.seed, self.meta_min_train_per_class, val_labels)

    def _meta_labels(self, dataset: Dataset) -> np.ndarray:
        """The multi-hot labels the meta sampler draws by (label-balanced meta-val batches)."""
        return label_matrix(dataset)

    def train_sampler(self, dataset: Dataset) -> Sampler | None:
        """``None``: the loader shuffles (the only sampler multi-label data takes)."""
        return None


class _LabelSubset(Dataset):
    """Some labels of a multi-label dataset, in the order given; samples with none are left out.

    As with single-label ``data.classes``, a sample none of whose labels is kept leaves every
    split (it would be a scene of nothing the model knows).
    """

    def __init__(self, dataset: Dataset, classes: list[str], split: str) -> None:
        names = _subset_names(dataset, classes, split)
        self.columns = [names.index(c) for c in classes]
        kept = label_matrix(dataset)[:, self.columns]
        self.dataset = dataset
        self.indices = np.flatnonzero(kept.any(1)).tolist()
        self.label_matrix = kept[self.indices]
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[self.indices[index]])
        sample["label"] = sample["label"][self.columns]
        return sample
