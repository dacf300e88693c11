from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from rs_metapeft.data.meta_split import MetaSampler
from rs_metapeft.data.resumable import ResumableDataLoader
from rs_metapeft.data.splits import stratified_split

TARGETS = [0] * 60 + [1] * 25 + [2] * 10 + [3] * 5
VAL_TARGETS = [0] * 20 + [1] * 5 + [2] * 2 + [3]


def test_holdout_keeps_the_last_images_of_every_class_for_training():
    t = np.asarray(TARGETS)
    s = MetaSampler(TARGETS, "holdout", 0.2, batch_size=4, min_train_per_class=5, seed=1)
    keep, held = s.train_indices, s.held_out
    assert not set(keep) & set(held) and len(keep) + len(held) == len(t)
    assert np.array_equal(held, s.parts["val"]) and np.array_equal(keep, s.parts["train"])
    assert np.bincount(t[held], minlength=4).tolist() == [12, 5, 2, 0]  # class 3 has only 5
    assert all(np.count_nonzero(t[keep] == c) >= 5 for c in range(4))
    # Meta-val is the holdout only, meta-train the inner training set only.
    for _ in range(10):
        assert set(s.draw("val")) <= set(held)
        assert set(s.draw("train")) <= set(keep)
    # At least one image of a class with a spare one, never its last min_train_per_class.
    (held,) = stratified_split([0] * 6 + [1] * 3 + [2] * 40, [0.05], seed=0, min_keep=5).held
    assert np.bincount(np.asarray([0] * 6 + [1] * 3 + [2] * 40)[held], minlength=3).tolist() == [
        1, 0, 2]


def test_an_empty_holdout_says_which_fields_to_change():
    with pytest.raises(ValueError, match="data.meta_min_train_per_class.*val_split"):
        MetaSampler([0] * 5 + [1] * 3, "holdout", 0.5)
    with pytest.raises(ValueError, match="data.meta_min_train_per_class"):
        MetaSampler(TARGETS, "holdout", 0.2, min_train_per_class=0)


def test_val_split_draws_only_validation_indices_and_trains_on_everything():
    s = MetaSampler(TARGETS, "val_split", batch_size=8, balanced_val=False,
                    val_targets=VAL_TARGETS)
    assert len(s.held_out) == 0 and np.array_equal(s.train_indices, np.arange(len(TARGETS)))
    drawn = np.concatenate([s.draw("val") for _ in range(len(VAL_TARGETS) // 8)])
    assert len(set(drawn.tolist())) == len(drawn) and set(drawn) <= set(range(len(VAL_TARGETS)))
    assert set(np.concatenate([s.draw("train") for _ in range(20)])) <= set(range(len(TARGETS)))
    with pytest.raises(ValueError, match="data.meta_protocol val_split.*no images"):
        MetaSampler(TARGETS, "val_split")


def test_resample_draws_a_fresh_meta_set_each_round():
    s = MetaSampler(TARGETS, "resample", 0.25, batch_size=8, seed=0)
    first = {k: v.copy() for k, v in s.parts.items()}
    assert len(first["train"]) + len(first["val"]) == 25
    assert not set(first["train"]) & set(first["val"])
    s.new_round()
    assert not np.array_equal(first["val"], s.parts["val"])
    assert set(s.draw("val")) <= set(s.parts["val"])
    assert len(s.held_out) == 0


def test_balanced_meta_val_batches_have_equal_class_counts():
    s = MetaSampler(TARGETS, "val_split", batch_size=8, val_targets=VAL_TARGETS, seed=0)
    assert s.balanced_val  # the default
    for _ in range(5):
        assert np.bincount(np.asarray(VAL_TARGETS)[s.draw("val")], minlength=4).tolist() == [
            2, 2, 2, 2]  # class 3 has one image: drawn with replacement
    s.batch_size = 10  # the remainder goes to random classes
    counts = np.bincount(np.asarray(VAL_TARGETS)[s.draw("val")], minlength=4)
    assert counts.sum() == 10 and set(counts.tolist()) == {2, 3}
    # Over the classes present in the pool: the holdout of TARGETS has no class 3.
    h = MetaSampler(TARGETS, "holdout", 0.2, batch_size=9, seed=0)
    assert np.bincount(np.asarray(TARGETS)[h.draw("val")], minlength=4).tolist() == [3, 3, 3, 0]
    plain = MetaSampler(TARGETS, "val_split", batch_size=20, balanced_val=False,
                        val_targets=VAL_TARGETS)
    assert np.bincount(np.asarray(VAL_TARGETS)[plain.draw("val")], minlength=4)[0] > 10


@pytest.mark.parametrize("protocol", ["holdout", "val_split", "resample"])
def test_state_dict_resumes_the_same_draws(protocol):
    def sampler(**kw):
        args = dict(batch_size=4, seed=3, val_targets=VAL_TARGETS, fraction=0.3)
        return MetaSampler(TARGETS, protocol, **{**args, **kw})

    a = sampler()
    for _ in range(5):
        a.new_round()
        a.draw("train"), a.draw("val")
    b = sampler()
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        a.new_round(), b.new_round()
        assert np.array_equal(a.draw("train"), b.draw("train"))
        assert np.array_equal(a.draw("val"), b.draw("val"))
    other = "resample" if protocol != "resample" else "holdout"
    with pytest.raises(ValueError, match="data.meta_protocol"):
        MetaSampler(TARGETS, other, 0.3, seed=3, val_targets=VAL_TARGETS).load_state_dict(
            a.state_dict())
    if protocol == "holdout":
        with pytest.raises(ValueError, match="data.meta_min_train_per_class"):
            sampler(min_train_per_class=3).load_state_dict(a.state_dict())
    if protocol == "val_split":  # the fraction plays no part in val_split
        sampler(fraction=0.5).load_state_dict(a.state_dict())
        with pytest.raises(ValueError, match="same data"):
            MetaSampler(TARGETS, protocol, val_targets=VAL_TARGETS[:-1]).load_state_dict(
                a.state_dict())


def test_bad_options_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="data.meta_protocol"):
        MetaSampler(TARGETS, "bootstrap")
    with pytest.raises(ValueError, match="data.meta_fraction"):
        MetaSampler(TARGETS, "resample", 0.0)
    with pytest.raises(ValueError, match="data.meta_batch_size"):
        MetaSampler(TARGETS, "resample", batch_size=0)


def test_resumable_loader_replays_the_epoch_and_skips_what_was_trained_on():
    data = TensorDataset(torch.arange(20))

    def loader():
        return ResumableDataLoader(data, batch_size=4, shuffle=True,
                                   generator=torch.Generator().manual_seed(0))

    a = loader()
    epoch0 = [b[0].tolist() for b in a]
    it = iter(a)
    seen = [next(it)[0].tolist() for _ in range(2)]
    state = a.state_dict()
    rest = [b[0].tolist() for b in it]
    b = loader()
    b.load_state_dict(state)
    assert [x[0].tolist() for x in b] == rest
    assert seen + rest != epoch0  # the second epoch has its own order
    # Saved between epochs: the next pass continues the generator, it does not replay.
    c = loader()
    list(c)
    d = loader()
    d.load_state_dict(c.state_dict())
    assert [x[0].tolist() for x in d] == seen + rest


def _inner_base_indices(dm):
    """Indices, in the datamodule's meta-val index space, of the images the inner step trains on."""
    return set(dm.train_dataset.indices)


def test_holdout_is_removed_from_inner_training_and_counts(tiny_s2_root):
    from tests.tasks.factory import make_dm

    full = make_dm(tiny_s2_root, meta_protocol="val_split")
    full.setup("fit")
    dm = make_dm(tiny_s2_root, meta_protocol="holdout", meta_fraction=0.3)
    dm.setup("fit")
    held = set(dm.meta_sampler.held_out.tolist())
    source = dm.meta_datasets["val"]
    # The inner training set is the meta source without the holdout; counts describe it.
    assert isinstance(dm.train_dataset, Subset) and dm.train_dataset.dataset is source
    assert held and not held & _inner_base_indices(dm)
    assert len(held) + len(dm.train_dataset) == len(source) == len(full.train_dataset)
    held_counts = np.bincount([int(source[i]["label"]) for i in held], minlength=4)
    assert np.array_equal(np.asarray(dm.train_counts), np.asarray(full.train_counts) - held_counts)
    assert sum(dm.train_counts) == len(dm.train_dataset)
    assert all(c >= min(n, 5) for c, n in zip(dm.train_counts, full.train_counts, strict=True))
    batch = dm.meta_batch("val")
    assert batch["image"].shape[0] == dm.meta_batch_size and batch["image"].shape[1] == 13
    with pytest.raises(ValueError, match="data.meta_disjoint was removed"):
        make_dm(tiny_s2_root, meta_disjoint=True)
    with pytest.raises(ValueError, match="data.meta_protocol"):
        make_dm(tiny_s2_root, meta_protocol="bootstrap")
    with pytest.raises(ValueError, match="data.meta_min_train_per_class"):
        make_dm(tiny_s2_root, meta_protocol="holdout", meta_min_train_per_class=40).setup("fit")


def test_val_split_is_the_default_and_draws_from_the_validation_split(tiny_s2_root):
    from tests.tasks.factory import make_dm

    dm = make_dm(tiny_s2_root)
    dm.setup("fit")
    assert dm.meta_protocol == "val_split" and dm.meta_balanced_val
    assert dm.meta_datasets["val"] is dm.val_dataset
    assert dm.meta_datasets["train"] is dm.train_dataset
    assert len(dm.meta_sampler.held_out) == 0 and sum(dm.train_counts) == len(dm.train_dataset)
    val_labels = [int(dm.val_dataset[i]["label"]) for i in range(len(dm.val_dataset))]
    for _ in range(3):
        indices = dm.meta_sampler.draw("val")
        assert set(indices) <= set(range(len(dm.val_dataset)))
        assert np.bincount(np.asarray(val_labels)[indices], minlength=4).tolist() == [1, 1, 1, 1]
    # Meta-val gets the evaluation transform, meta-train the training augmentation.
    dm.aug = lambda b: {**b, "transform": "eval"}
    dm.train_aug = lambda b: {**b, "transform": "train"}
    assert dm.meta_batch("val")["transform"] == "eval"
    assert dm.meta_batch("train")["transform"] == "train"


def test_val_split_without_validation_images_is_one_clear_error(tiny_s2_root):
    from rs_metapeft.data import SyntheticEuroSATDataModule
    from tests.tasks.factory import make_dm

    class NoVal(SyntheticEuroSATDataModule):
        def make_dataset(self, split):
            dataset = super().make_dataset(split)
            return Subset(dataset, []) if split == "val" else dataset

    dm = make_dm(tiny_s2_root)
    dm.__class__ = NoVal
    with pytest.raises(ValueError, match="val_split.*no images.*holdout"):
        dm.setup("fit")


def test_ddp_ranks_keep_their_share_of_one_balanced_global_batch(tiny_s2_root):
    from tests.tasks.factory import make_dm

    labels = []
    for rank in range(2):
        dm = make_dm(tiny_s2_root)
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, max_epochs=1)
        dm.setup("fit")
        batch = dm.meta_batch("val")
        assert batch["image"].shape[0] == dm.meta_batch_size
        labels += batch["label"].tolist()
    assert np.bincount(labels, minlength=4).tolist() == [2, 2, 2, 2]


def test_the_datamodule_state_carries_the_meta_sampler(tiny_s2_root):
    from tests.tasks.factory import make_dm

    a = make_dm(tiny_s2_root, meta_protocol="resample", meta_fraction=0.3, augment=False)
    a.setup("fit")
    a.new_meta_round()
    a.meta_batch("val")
    state = a.state_dict()
    expected = [a.meta_batch(part)["image"] for part in ("val", "train", "val")]
    b = make_dm(tiny_s2_root, meta_protocol="resample", meta_fraction=0.3, augment=False)
    assert b.state_dict() == {}
    b.load_state_dict(state)  # before setup, as a checkpoint may come: it waits for the sampler
    b.setup("fit")
    for part, image in zip(("val", "train", "val"), expected, strict=True):
        assert torch.equal(b.meta_batch(part)["image"], image)


def test_multilabel_meta_val_batches_are_label_balanced():
    from rs_metapeft.data.meta_split import MultiLabelMetaSampler

    rng = np.random.default_rng(0)
    # label 0 on nearly every sample, label 3 on two of 200
    labels = np.stack([rng.random(200) < p for p in (0.9, 0.4, 0.1, 0.0)], 1).astype(np.uint8)
    labels[[5, 9], 3] = 1
    sampler = MultiLabelMetaSampler(labels, "resample", fraction=1.0, batch_size=40, seed=1)
    batch = labels[sampler.draw("val")]
    # each label gets a quarter of the batch, so the rare label is as present as the head one
    assert batch[:, 3].sum() >= 10 and batch[:, 2].sum() >= 10
    plain = MultiLabelMetaSampler(labels, "resample", fraction=1.0, batch_size=40, seed=1,
                                  balanced_val=False)
    assert labels[plain.draw("val"), 3].sum() < batch[:, 3].sum()


def test_multilabel_holdout_keeps_rare_labels_in_training():
    from rs_metapeft.data.meta_split import MultiLabelMetaSampler, rarest_labels

    labels = np.zeros((60, 3), np.uint8)
    labels[:, 0] = 1
    labels[:12, 1] = 1
    labels[:3, 2] = 1  # three samples carry the rare label (and both others)
    sampler = MultiLabelMetaSampler(labels, "holdout", fraction=0.5, min_train_per_class=3)
    assert rarest_labels(labels, labels.sum(0))[:3].tolist() == [2, 2, 2]
    kept = labels[sampler.train_indices]
    assert kept[:, 2].sum() == 3  # a stratum of min_train_per_class stays whole
    assert 0 < len(sampler.held_out) < 60
    assert set(sampler.held_out.tolist()).isdisjoint(sampler.train_indices.tolist())
