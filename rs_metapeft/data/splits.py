"""The one stratified split of the package: seeded, class by class, on scikit-learn.

Every split that holds images out of a labelled set goes through :func:`stratified_split`: the
validation hold-out of So2Sat's version-3 files, the ``holdout`` meta-validation set of
:mod:`rs_metapeft.data.meta_split`, the train / val / test split of a GeoTIFF folder without
split lists and :func:`~rs_metapeft.data.longtail.stratified_meta_split`.

Counts are set per class, not globally: scikit-learn's stratified splitters share one rounded
total out among the classes, which may leave a tail class with no held-out image (or take its last
training image). Here each class gives every held-out part ``round(fraction * n)`` images, at
least one, while keeping ``min_keep``; a class too small for that stays whole in the kept part and
is reported, so a caller can name it. Which images go where is drawn by
``sklearn.model_selection.train_test_split``, for each class from a generator seeded by the seed
and the class's label, so that one class's split does not depend on which other classes exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["StratifiedSplit", "stratified_split"]


class StratifiedSplit(NamedTuple):
    """Result of :func:`stratified_split`; all index arrays are sorted and disjoint.

    Attributes:
        keep: indices that stay (the training part).
        held: one index array per requested fraction, in the order given.
        unsplit: labels of the classes too small to split, which stay whole in ``keep``.
    """

    keep: np.ndarray
    held: list[np.ndarray]
    unsplit: list[int]


def stratified_split(
    targets: Sequence[int],
    fractions: Sequence[float],
    seed: int = 0,
    min_keep: int = 1,
) -> StratifiedSplit:
    """Hold out a share of every class for each of one or more parts, with a seed.

    A class with ``n`` images gives part ``p`` ``round(fractions[p] * n)`` of them, at least one,
    but always leaves ``min_keep`` images in ``keep`` and one for every later part. A class with
    fewer than ``min_keep + len(fractions)`` images is not split.

    Args:
        targets: integer label of every item (any non-negative integers: a class's draw is
            seeded by its label).
        fractions: share of each class for each held-out part, each in (0, 1].
        seed: which images go where; the same seed and labels give the same split.
        min_keep: images of every split class that always stay in ``keep``; 0 lets the parts
            take a whole class (a meta set drawn from data that is trained on anyway).

    Returns:
        The kept indices, one index array per part, and the classes left unsplit.

    Raises:
        ValueError: a fraction outside (0, 1] or a negative ``min_keep``.

    Example:
        >>> split = stratified_split([0] * 10 + [1] * 2, [0.2], seed=0, min_keep=2)
        >>> [len(part) for part in split.held], split.unsplit
        ([2], [1])
    """
    fractions = list(fractions)
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"split fractions must be in (0, 1], got {bad}")
    if min_keep < 0:
        raise ValueError(f"min_keep must be at least 0, got {min_keep}")
    labels = np.asarray(targets, dtype=np.int64)
    held: list[list[np.ndarray]] = [[] for _ in fractions]
    unsplit = []
    for c in np.unique(labels):
        rest = np.flatnonzero(labels == c)
        n = len(rest)
        if n < min_keep + len(fractions):
            unsplit.append(int(c))
            continue
        rng = np.random.RandomState([seed % 2**32, int(c) % 2**32])
        for p, fraction in enumerate(fractions):
            later = len(fractions) - p - 1
            k = min(len(rest) - min_keep - later, max(1, round(fraction * n)))
            if k == len(rest):  # all that is left (min_keep 0); train_test_split must keep one
                rest, out = rest[:0], rest
            else:
                rest, out = train_test_split(rest, test_size=k, random_state=rng)
            held[p].append(out)
    parts = [np.sort(np.concatenate(h)) if h else np.empty(0, np.int64) for h in held]
    taken = np.concatenate(parts) if parts else np.empty(0, np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), taken)
    return StratifiedSplit(keep.astype(np.int64), [p.astype(np.int64) for p in parts], unsplit)
