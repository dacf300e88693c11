import numpy as np
import pytest

from rs_metapeft.data.splits import stratified_split

TARGETS = np.asarray([0] * 40 + [1] * 10 + [2] * 3 + [3] * 2)


def test_every_class_gives_its_share_to_every_part():
    split = stratified_split(TARGETS, [0.2, 0.1], seed=3)
    val, test = split.held
    assert np.bincount(TARGETS[val], minlength=4).tolist() == [8, 2, 1, 0]
    assert np.bincount(TARGETS[test], minlength=4).tolist() == [4, 1, 1, 0]
    assert np.bincount(TARGETS[split.keep], minlength=4).tolist() == [28, 7, 1, 2]
    assert split.unsplit == [3]  # two images cannot fill three parts
    everything = np.concatenate([split.keep, val, test])
    assert sorted(everything.tolist()) == list(range(len(TARGETS)))


def test_min_keep_is_never_taken_and_the_seed_decides():
    split = stratified_split(TARGETS, [0.9], seed=0, min_keep=5)
    assert np.bincount(TARGETS[split.held[0]], minlength=4).tolist() == [35, 5, 0, 0]
    assert split.unsplit == [2, 3]
    again = stratified_split(TARGETS, [0.9], seed=0, min_keep=5)
    other = stratified_split(TARGETS, [0.9], seed=1, min_keep=5)
    assert np.array_equal(split.held[0], again.held[0])
    assert not np.array_equal(split.held[0], other.held[0])


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match=r"fractions must be in \(0, 1\], got \[0\]"):
        stratified_split(TARGETS, [0.1, 0])
    with pytest.raises(ValueError, match="min_keep must be at least 0"):
        stratified_split(TARGETS, [0.1], min_keep=-1)


def test_min_keep_0_may_take_a_whole_class():
    split = stratified_split(TARGETS, [0.5, 0.5], seed=0, min_keep=0)
    assert np.bincount(TARGETS[split.keep], minlength=4).tolist() == [0, 0, 0, 0]
    assert [np.bincount(TARGETS[p], minlength=4).tolist() for p in split.held] == [
        [20, 5, 2, 1], [20, 5, 1, 1]]
