import numpy as np
import pytest

from rs_metapeft.data.longtail import assign_groups, longtail_indices, stratified_meta_split


def test_threshold_groups():
    groups = assign_groups([300, 100, 20, 19], rule="thresholds")
    assert groups == ["many", "medium", "medium", "few"]


def test_auto_falls_back_to_quantiles_on_small_data():
    groups = assign_groups([20, 12, 6, 4, 3, 2], rule="auto")
    assert groups == ["many", "many", "medium", "medium", "few", "few"]


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="groups rule"):
        assign_groups([1, 2], rule="median")


def test_longtail_subset_follows_the_profile():
    targets = np.repeat(np.arange(5), 100)
    keep = longtail_indices(targets, imbalance_ratio=100, seed=1)
    counts = np.bincount(targets[keep])
    assert counts[0] == 100 and counts[-1] == 1
    assert np.all(np.diff(counts) <= 0)
    assert np.array_equal(keep, longtail_indices(targets, 100, seed=1))


def test_meta_split_is_stratified_and_disjoint():
    targets = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3])
    meta_train, meta_val = stratified_meta_split(targets, fraction=0.2, seed=0)
    assert not set(meta_train) & set(meta_val)
    assert set(targets[meta_val]) == {0, 1, 2, 3}
    assert {0, 1, 2} <= set(targets[meta_train])
    assert abs(len(meta_train) + len(meta_val) - 0.2 * len(targets)) <= 4


def test_step_profile_and_imbalance_ratio():
    from rs_metapeft.data.longtail import class_counts, imbalance_ratio

    targets = np.repeat(np.arange(4), 50)
    keep = longtail_indices(targets, imbalance_ratio=10, profile="step", seed=0)
    counts = class_counts(targets[keep], 4)
    assert counts == [50, 50, 5, 5] and imbalance_ratio(counts) == 10.0
    assert imbalance_ratio([7, 0, 7]) == 1.0


def test_groups_from_explicit_class_lists():
    from rs_metapeft.data.longtail import groups_from_class_lists

    names = ["cargo", "tanker", "fishing", "tug"]
    lists = {"many": ["cargo"], "medium": ["tanker", 2], "few": [3]}
    groups = groups_from_class_lists(names, lists)
    assert groups == ["many", "medium", "medium", "few"]
    with pytest.raises(ValueError, match=r"classes \['tug'\] are in no group"):
        groups_from_class_lists(names, {"many": ["cargo", "tanker", "fishing"]})
    with pytest.raises(ValueError, match="'ferry' is not a class"):
        groups_from_class_lists(names, {"few": ["ferry"]})
    with pytest.raises(ValueError, match="in groups many and few"):
        groups_from_class_lists(names, {"many": ["cargo"], "few": ["cargo"]})


def test_class_counts_are_logged(caplog):
    import logging

    from rs_metapeft.data.longtail import log_class_counts

    with caplog.at_level(logging.INFO, logger="rs_metapeft.data.longtail"):
        line = log_class_counts(["a", "b"], [40, 4])
    assert "imbalance ratio 10.0" in line and line in caplog.text
