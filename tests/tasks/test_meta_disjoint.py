"""Through a whole fit: no image the inner steps train on is ever a meta-validation image.

Every image read from disk is recorded (by its file and split) with what read it: the inner
training loader, a meta-val batch or a meta-train batch. The meta loss is only an honest signal
if the inner-training and meta-val sets never meet.
"""

from collections import defaultdict

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset
from torchgeo.datasets import EuroSAT

from .factory import make_dm, make_task, make_trainer


class _Reads:
    """What read each image: ``phase -> [(split, base index, file)]``."""

    def __init__(self):
        self.phase = "other"
        self.reads = defaultdict(list)
        self.meta_val_labels = []

    def files(self, phase, split=None):
        return {f for s, _, f in self.reads[phase] if split is None or s == split}


class _InnerLoaderDataset(Dataset):
    """The training dataset as the inner loader sees it: marks its reads as ``inner``."""

    def __init__(self, dataset, record):
        self.dataset, self.record = dataset, record
        self.targets = _targets(dataset)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.record.phase = "inner"
        try:
            return self.dataset[i]
        finally:
            self.record.phase = "other"


def _recorded_run(root, tmp_path, monkeypatch, dm_kwargs, meta):
    record = _Reads()
    getitem = EuroSAT.__getitem__

    def recording_getitem(self, index):
        record.reads[record.phase].append((self.split, int(index), self.samples[index][0]))
        return getitem(self, index)

    monkeypatch.setattr(EuroSAT, "__getitem__", recording_getitem)
    L.seed_everything(0, verbose=False)
    dm = make_dm(root, **dm_kwargs)
    train_dataloader, meta_batch = dm.train_dataloader, dm.meta_batch

    def inner_loader():
        real = dm.train_dataset
        dm.train_dataset = _InnerLoaderDataset(real, record)
        try:
            return train_dataloader()
        finally:
            dm.train_dataset = real

    def recording_meta_batch(part, device="cpu"):
        record.phase = f"meta_{part}"
        try:
            batch = meta_batch(part, device)
        finally:
            record.phase = "other"
        if part == "val":
            record.meta_val_labels.append(batch["label"].tolist())
        return batch

    dm.train_dataloader, dm.meta_batch = inner_loader, recording_meta_batch
    task = make_task(dm, meta={"every_n_steps": 1, "warmup_steps": 0, **meta},
                     backbone_kwargs={"depth": 1})
    trainer = make_trainer(tmp_path, max_steps=-1, max_epochs=3)
    trainer.fit(task, datamodule=dm)
    return record, dm, task, trainer


@pytest.mark.parametrize("protocol, dm_kwargs, meta", [
    ("holdout", {"meta_fraction": 0.3}, {"lookahead": "meta_train"}),
    ("val_split", {}, {}),
])
def test_inner_training_and_meta_validation_never_share_an_image(
        tiny_s2_root, tmp_path, monkeypatch, protocol, dm_kwargs, meta):
    record, dm, task, trainer = _recorded_run(
        tiny_s2_root, tmp_path, monkeypatch, {"meta_protocol": protocol, **dm_kwargs}, meta)
    assert trainer.current_epoch == 3 and task.outer_steps >= 6
    inner, meta_val = record.files("inner"), record.files("meta_val")
    assert inner and meta_val
    assert not inner & meta_val, f"{len(inner & meta_val)} meta-val images were also trained on"
    # Every inner read is a training-split image; in 3 epochs the loader saw (nearly) all of them.
    assert record.files("inner") == record.files("inner", "train")
    assert len(inner) >= len(dm.train_dataset) - dm.batch_size
    if protocol == "holdout":
        # Meta-val images are holdout images of the training split, nothing else.
        source = dm.meta_datasets["val"]
        holdout = {_file(source, i) for i in dm.meta_sampler.held_out}
        assert meta_val <= holdout and not holdout & inner
        assert record.files("meta_val") == record.files("meta_val", "train")
        # Meta-train batches come from the inner training set.
        trained_on = {_file(dm.train_dataset, i) for i in range(len(dm.train_dataset))}
        assert record.files("meta_train") and record.files("meta_train") <= trained_on
        assert inner <= trained_on
    else:
        # Meta-val images all come from the validation split; the training set is untouched.
        assert record.files("meta_val") == record.files("meta_val", "val")
        assert meta_val <= {f for f, _ in dm.val_dataset.samples}
        assert not record.files("meta_train")  # the default look-ahead reuses the inner step
    # The counts and log prior describe the images the inner step trained on.
    counts = np.bincount([int(t) for t in _targets(dm.train_dataset)], minlength=4)
    assert task.train_counts == counts.tolist()
    assert torch.allclose(task.log_prior.exp(), torch.tensor(counts / counts.sum()).float())
    # The report's groups are decided by the training split before the holdout came out of it.
    held_out = len(dm.meta_sampler.held_out) if protocol == "holdout" else 0
    assert sum(task.group_counts) == sum(task.train_counts) + held_out
    assert all(g >= t for g, t in zip(task.group_counts, task.train_counts, strict=True))
    assert (task.group_counts != task.train_counts) == (protocol == "holdout")
    # Class-balanced meta-val batches over the classes of the meta-val pool.
    pool_classes = np.unique(dm.meta_sampler.labels("val")[dm.meta_sampler.parts["val"]])
    per_class = dm.meta_batch_size // len(pool_classes)
    assert record.meta_val_labels
    for labels in record.meta_val_labels:
        counts = np.bincount(labels, minlength=4)
        assert counts[pool_classes].tolist() == [per_class] * len(pool_classes), labels


def test_resample_is_leaky_and_the_recording_sees_it(tiny_s2_root, tmp_path, monkeypatch):
    record, *_ = _recorded_run(tiny_s2_root, tmp_path, monkeypatch,
                               {"meta_protocol": "resample", "meta_fraction": 0.3}, {})
    assert record.files("inner") & record.files("meta_val")  # meta-val images are also fitted


def _file(dataset, i):
    """The file behind index ``i`` of a (possibly nested) Subset of EuroSAT."""
    while isinstance(dataset, Subset):
        dataset, i = dataset.dataset, dataset.indices[i]
    return dataset.samples[i][0]


def _targets(dataset):
    from rs_metapeft.data.datamodules.base import _targets as targets

    return targets(dataset)
