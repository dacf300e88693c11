"""Long-tail tooling: class counts, head/medium/tail groups, long-tail subsets, meta splits."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from ..choices import check_choice
from .splits import stratified_split

__all__ = [
    "BALANCED",
    "BALANCED_RATIO",
    "GROUPS",
    "GroupsRule",
    "LongtailProfile",
    "assign_groups",
    "class_counts",
    "groups_from_class_lists",
    "imbalance_ratio",
    "group_rule_used",
    "log_class_counts",
    "longtail_indices",
    "longtail_targets",
    "stratified_meta_split",
]

log = logging.getLogger(__name__)

#: Group names, head to tail.
GROUPS = ("many", "medium", "few")
#: How classes are grouped by training count (see :func:`assign_groups`).
GroupsRule = Literal["auto", "thresholds", "quantile"]
#: How a long-tail subset thins the classes (see :func:`longtail_indices`).
LongtailProfile = Literal["exponential", "step"]
#: The ``auto`` rule's one group for classes of (nearly) equal size: no head, no tail.
BALANCED = "balanced"
#: Largest / smallest training count up to which the ``auto`` rule calls the classes balanced.
BALANCED_RATIO = 1.2


def class_counts(targets: Sequence[int], num_classes: int) -> list[int]:
    """Number of samples per class.

    Args:
        targets: integer labels.
        num_classes: number of classes (classes with no samples count 0).

    Returns:
        A list of length ``num_classes``.
    """
    return np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes).tolist()


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Largest / smallest class count over the classes that have samples.

    Example:
        >>> imbalance_ratio([300, 30, 3])
        100.0
    """
    present = [c for c in counts if c > 0]
    if not present:
        raise ValueError("no class has any samples")
    return float(max(present)) / float(min(present))


def log_class_counts(
    class_names: Sequence[str], counts: Sequence[int], split: str = "train"
) -> str:
    """Log (and return) one line with the class counts and the imbalance ratio of a split."""
    pairs = ", ".join(f"{n}={c}" for n, c in zip(class_names, counts, strict=True))
    line = (
        f"{split}: {sum(counts)} samples in {len(counts)} classes, imbalance ratio "
        f"{imbalance_ratio(counts):.1f} ({pairs})"
    )
    log.info(line)
    return line


def groups_from_class_lists(
    class_names: Sequence[str], lists: Mapping[str, Sequence[str | int]]
) -> list[str]:
    """Groups given explicitly, as the FUSRS and DOTA splits do: ``{many: [...], few: [...]}``.

    Classes may be named or given by index; each class must be in exactly one list.

    Raises:
        ValueError: an unknown group or class, a class in two lists, or a class in none.
    """
    names = list(class_names)
    groups: list[str | None] = [None] * len(names)
    for group, members in lists.items():
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; groups are {', '.join(GROUPS)}")
        for member in members:
            if isinstance(member, int):
                if not 0 <= member < len(names):
                    raise ValueError(f"group {group}: class index {member} is out of range")
                idx = member
            elif member in names:
                idx = names.index(member)
            else:
                raise ValueError(f"group {group}: {member!r} is not a class ({', '.join(names)})")
            if groups[idx] is not None:
                raise ValueError(f"class {names[idx]!r} is in groups {groups[idx]} and {group}")
            groups[idx] = group
    missing = [n for n, g in zip(names, groups, strict=True) if g is None]
    if missing:
        raise ValueError(f"classes {missing} are in no group; add them to a group list")
    return [str(g) for g in groups]


def group_rule_used(
    counts: Sequence[int],
    rule: GroupsRule = "auto",
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> str:
    """The rule :func:`assign_groups` applies: ``thresholds``, ``quantile`` or ``balanced``.

    ``auto`` becomes ``balanced`` when the largest class has at most :data:`BALANCED_RATIO`
    times the smallest one's images, else ``thresholds`` when they give every group a class,
    else ``quantile``.

    Example:
        >>> group_rule_used([300, 50, 5]), group_rule_used([98, 70, 54])
        ('thresholds', 'quantile')
        >>> group_rule_used([40, 40, 39])
        'balanced'
    """
    check_choice(rule, GroupsRule, "groups rule (model.groups.rule)")
    if rule != "auto":
        return rule
    counts = list(counts)
    if counts and min(counts) > 0 and max(counts) <= BALANCED_RATIO * min(counts):
        return "balanced"
    by_threshold = {_threshold_group(c, many_threshold, few_threshold) for c in counts}
    return "thresholds" if by_threshold == set(GROUPS) else "quantile"


def _threshold_group(count: int, many_threshold: int, few_threshold: int) -> str:
    return "many" if count > many_threshold else "few" if count < few_threshold else "medium"


def assign_groups(
    counts: Sequence[int],
    rule: GroupsRule = "auto",
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> list[str]:
    """Assign each class to the many / medium / few group by its training count.

    Args:
        counts: training count per class.
        rule: ``"thresholds"`` (many: count > ``many_threshold``; few: count < ``few_threshold``,
            as in the long-tail literature), ``"quantile"`` (thirds of the classes sorted by count,
            for small data), or ``"auto"`` (every class ``"balanced"`` when the counts are within
            :data:`BALANCED_RATIO` of each other; else thresholds when every group gets a class,
            else quantiles; see :func:`group_rule_used`).
        many_threshold: many-group threshold for the thresholds rule.
        few_threshold: few-group threshold for the thresholds rule.

    Returns:
        The group name of each class.

    Example:
        >>> assign_groups([300, 50, 5], rule="thresholds")
        ['many', 'medium', 'few']
        >>> assign_groups([40, 40, 40])
        ['balanced', 'balanced', 'balanced']
    """
    counts = list(counts)
    used = group_rule_used(counts, rule, many_threshold, few_threshold)
    if used == "balanced":
        return [BALANCED] * len(counts)
    if used == "thresholds":
        return [_threshold_group(c, many_threshold, few_threshold) for c in counts]
    order = np.argsort(-np.asarray(counts), kind="stable")
    thirds = np.array_split(order, 3)
    groups = [""] * len(counts)
    for name, members in zip(GROUPS, thirds, strict=True):
        for c in members:
            groups[int(c)] = name
    return groups


def longtail_targets(counts: Sequence[int], imbalance_ratio: float,
                     profile: str = "exponential") -> list[int]:
    """The count each class should keep in a long-tailed subset (before capping at what it has).

    Classes are ranked by label: class 0 gets the largest class's count ``n_max`` and class ``c``
    ``n_max * ratio ** (-c / (C - 1))`` (exponential) or ``n_max / ratio`` for the second half of
    the classes (step); at least 1.

    Example:
        >>> longtail_targets([100, 100, 100], 10)
        [100, 32, 10]
    """
    if profile not in ("exponential", "step"):
        raise ValueError(f"long-tail profile must be exponential or step, got {profile!r}")
    num_classes, n_max = len(counts), max(counts)
    targets = []
    for c in range(num_classes):
        if profile == "exponential":
            frac = imbalance_ratio ** (-c / max(num_classes - 1, 1))
        else:
            frac = 1.0 if c < num_classes / 2 else 1.0 / imbalance_ratio
        targets.append(max(1, int(round(n_max * frac))))
    return targets


def longtail_indices(
    targets: Sequence[int],
    imbalance_ratio: float,
    profile: LongtailProfile = "exponential",
    seed: int = 0,
) -> np.ndarray:
    """Indices of a long-tailed subset of a (roughly balanced) dataset.

    Each class keeps its :func:`longtail_targets` count, or all it has when that is fewer (so
    the subset's ratio can fall short of ``imbalance_ratio``). At least one sample per class is
    kept.

    Args:
        targets: labels of the full dataset.
        imbalance_ratio: head count / tail count.
        profile: ``"exponential"`` or ``"step"``.
        seed: which samples of each class are kept.

    Returns:
        Sorted indices into the dataset.
    """
    check_choice(profile, LongtailProfile, "long-tail profile (data.longtail_profile)")
    targets = np.asarray(targets)
    num_classes = int(targets.max()) + 1
    by_class = [np.flatnonzero(targets == c) for c in range(num_classes)]
    wanted = longtail_targets([len(ix) for ix in by_class], imbalance_ratio, profile)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(ix)[:min(len(ix), n)]
            for ix, n in zip(by_class, wanted, strict=True)]
    return np.sort(np.concatenate(keep))


def stratified_meta_split(
    targets: Sequence[int], fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a stratified meta set from the training data, split into meta-train and meta-val.

    Each class gives each half ``round(fraction / 2 * n)`` samples, at least one (the package's
    one stratified split, :func:`~rs_metapeft.data.splits.stratified_split`, with the two halves
    as its parts and nothing kept back: the meta set may take a whole class, as its images are
    trained on anyway). So every class with two or more samples is seen by both halves; a class
    with one sample goes to meta-val. The two halves are disjoint.

    Args:
        targets: training labels.
        fraction: share of each class drawn into the meta set.
        seed: random seed.

    Returns:
        ``(meta_train_indices, meta_val_indices)`` into the training set.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"meta fraction must be in (0, 1], got {fraction}")
    targets = np.asarray(targets)
    split = stratified_split(targets, [fraction / 2, fraction / 2], seed, min_keep=0)
    meta_val, meta_train = split.held
    lone = np.flatnonzero(np.isin(targets, split.unsplit))  # one sample: too few for two halves
    return meta_train, np.union1d(meta_val, lone).astype(np.int64)
