import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from rs_metapeft.data.meta_split import MetaSampler
from rs_metapeft.data.resumable import ResumableDataLoader

TARGETS = [0] * 60 + [1] * 25 + [2] * 10 + [3] * 5


def test_holdout_is_stratified_disjoint_and_passes_without_repeats():
    s = MetaSampler(TARGETS, "holdout", 0.2, batch_size=4, seed=1)
    train, val = s.parts["train"], s.parts["val"]
    assert not set(train) & set(val)
    assert set(np.asarray(TARGETS)[val]) == {0, 1, 2, 3}  # every class in meta-val
    drawn = np.concatenate([s.draw("val") for _ in range(len(val) // 4)])
    assert len(set(drawn.tolist())) == len(drawn)  # one pass: no index twice
    assert set(drawn) <= set(val)
    assert np.array_equal(np.sort(s.held_out), np.sort(np.concatenate([train, val])))


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
    s = MetaSampler(TARGETS, "holdout", 0.2, batch_size=8, balanced_val=True, seed=0)
    counts = np.bincount(np.asarray(TARGETS)[s.draw("val")], minlength=4)
    assert counts.tolist() == [2, 2, 2, 2]
    plain = MetaSampler(TARGETS, "holdout", 0.5, batch_size=40, seed=0)
    assert np.bincount(np.asarray(TARGETS)[plain.draw("val")], minlength=4)[0] > 10


@pytest.mark.parametrize("protocol", ["holdout", "resample"])
def test_state_dict_resumes_the_same_draws(protocol):
    a = MetaSampler(TARGETS, protocol, 0.3, batch_size=4, balanced_val=True, seed=3)
    for _ in range(5):
        a.new_round()
        a.draw("train"), a.draw("val")
    b = MetaSampler(TARGETS, protocol, 0.3, batch_size=4, balanced_val=True, seed=3)
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        a.new_round(), b.new_round()
        assert np.array_equal(a.draw("train"), b.draw("train"))
        assert np.array_equal(a.draw("val"), b.draw("val"))
    with pytest.raises(ValueError, match="meta protocol"):
        MetaSampler(TARGETS, protocol, 0.2, seed=3).load_state_dict(a.state_dict())


def test_bad_protocol_and_fraction_are_refused():
    with pytest.raises(ValueError, match="data.meta_protocol"):
        MetaSampler(TARGETS, "bootstrap")
    with pytest.raises(ValueError, match="data.meta_fraction"):
        MetaSampler(TARGETS, "resample", 0.0)


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


def test_disjoint_holdout_leaves_the_meta_set_out_of_inner_training(tiny_s2_root):
    from tests.tasks.factory import make_dm

    shared = make_dm(tiny_s2_root, meta_fraction=0.3)
    shared.setup("fit")
    disjoint = make_dm(tiny_s2_root, meta_fraction=0.3, meta_disjoint=True)
    disjoint.setup("fit")
    held = set(disjoint.meta_sampler.held_out.tolist())
    assert held and sum(disjoint.train_counts) == sum(shared.train_counts) - len(held)
    assert not held & set(disjoint.train_dataset.indices)
    batch = disjoint.meta_batch("val")
    assert batch["image"].shape[0] <= disjoint.meta_batch_size and batch["image"].shape[1] == 13
    with pytest.raises(ValueError, match="data.meta_protocol"):
        make_dm(tiny_s2_root, meta_protocol="bootstrap")


def test_keep_for_training_gives_back_one_image_of_exhausted_classes():
    targets = [0] * 10 + [1] * 2 + [2]
    s = MetaSampler(targets, "holdout", 0.5, keep_for_training=True, seed=0)
    held = np.asarray(targets)[s.held_out]
    assert np.count_nonzero(held == 1) == 1 and np.count_nonzero(held == 2) == 0
    assert np.count_nonzero(held == 0) == 5
