"""Where MetaPEFT's meta batches come from: ``val_split``, ``holdout`` and ``resample`` protocols.

The outer step learns gamma from a meta-validation loss. That loss is only a signal about
generalisation if the inner steps never fit the meta-val images; on a fitted image the loss falls
towards zero and its gradient says "more scale everywhere". The protocols differ in how they get
such images and what that costs:

* ``holdout``: a stratified ``fraction`` of every class is held out of the training set for the
  whole run and is meta-validation only; the datamodule removes it from inner training, so it is
  disjoint from what the inner step fits. A class never gives up its last
  ``min_train_per_class`` images (a class with that many or fewer gives none). Trade-off: the
  holdout costs training images, and the tail classes, which need the signal most, rarely have
  images to spare, so a long-tailed holdout is mostly head classes.
* ``val_split`` (the default): meta-val batches come from the datamodule's validation split, the
  data a tuned search (e.g. Optuna) selects its hyperparameters on; the training set is untouched.
  Honest (never fitted) and class-complete (every class of the validation split), at no cost in
  training images. Trade-off: gamma is then fitted to the validation split, so that split is no
  longer an untouched selection set; early stopping or model selection on it is optimistic, and
  only the test split is still clean.
* ``resample`` (as the paper describes; kept for the record): for every outer step a fresh random
  ``fraction`` of the training set is drawn and split into meta-train and meta-val halves. It is
  leaky: the meta-val images are also fitted by the inner steps, so the meta loss is a training
  loss.

Meta-train batches (used only by separate look-ahead steps, ``model.meta.lookahead: meta_train``)
come from the inner training set for ``holdout`` and ``val_split`` (those images are fitted
anyway), and from the meta-train half for ``resample``.

Meta-val batches are class-balanced by default (equal counts per class over the classes present in
the meta-val pool, drawn with replacement inside a class that is short, the remainder going to
randomly chosen classes): a long-tailed batch of a few images rarely holds a tail image.

Multi-label data (:class:`MultiLabelMetaSampler`) take the same protocols, with each sample
stratified by its rarest label (the holdout then keeps every label's share of samples about
right, and a rare label's last samples stay in training), and label-balanced meta-val batches:
equal counts per label present in the pool, each drawn among the samples carrying it. All
randomness comes from one numpy generator whose state (with the pass positions) is
:meth:`MetaSampler.state_dict`, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from ..choices import check_choice
from .splits import stratified_split

__all__ = ["META_PROTOCOLS", "MetaProtocol", "MetaSampler", "MultiLabelMetaSampler",
           "rarest_labels"]

#: The meta-data protocols (``data.meta_protocol``).
MetaProtocol = Literal["holdout", "val_split", "resample"]
META_PROTOCOLS = get_args(MetaProtocol)


class MetaSampler:
    """Index batches for the outer step's meta-train and meta-val parts.

    Index spaces: ``parts["train"]`` indexes ``targets``; ``parts["val"]`` indexes
    ``val_targets`` (the validation split) for ``val_split`` and ``targets`` otherwise. For
    ``holdout``, ``targets`` are the labels *before* the holdout is removed, ``parts["val"]`` is
    the holdout and ``parts["train"]`` the rest (the inner training set, :attr:`train_indices`).

    Args:
        targets: labels of the training set (before a ``holdout`` is removed).
        protocol: ``holdout``, ``val_split`` or ``resample`` (see the module docstring).
        fraction: ``holdout``: share of each class held out; ``resample``: share of the
            training set drawn per outer step (the paper uses 0.2-0.3); unused by ``val_split``.
        batch_size: indices per batch (the global batch under DDP).
        balanced_val: draw meta-val batches with equal counts per class.
        seed: seed of the split and of every draw.
        min_train_per_class: ``holdout`` never takes a class's last this many images.
        val_targets: labels of the validation split (``val_split`` only).

    Raises:
        ValueError: a bad option, naming its ``data.`` field, or an empty meta-val pool.
    """

    def __init__(
        self,
        targets: Sequence[int],
        protocol: MetaProtocol = "val_split",
        fraction: float = 0.2,
        batch_size: int = 32,
        balanced_val: bool = True,
        seed: int = 0,
        min_train_per_class: int = 5,
        val_targets: Sequence[int] | None = None,
    ) -> None:
        self.check_options(protocol, fraction, batch_size, min_train_per_class)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.val_targets = np.asarray(
            val_targets if val_targets is not None else [], dtype=np.int64
        )
        self.protocol = protocol
        self.fraction = fraction
        self.batch_size = batch_size
        self.balanced_val = balanced_val
        self.seed = seed
        self.min_train_per_class = min_train_per_class
        self.rng = np.random.default_rng(seed)
        self._order: dict[str, np.ndarray] = {}
        self._pos: dict[str, int] = {}
        if protocol == "holdout":
            split = stratified_split(self.targets, [fraction], seed, min_keep=min_train_per_class)
            keep, (held,) = split.keep, split.held
            if len(held) == 0:
                raise ValueError(
                    "data.meta_protocol holdout: the holdout is empty; every class has at most "
                    f"data.meta_min_train_per_class ({min_train_per_class}) training images. "
                    "Lower data.meta_min_train_per_class, or use data.meta_protocol: val_split"
                )
            self.parts = {"train": keep, "val": held}
        elif protocol == "val_split":
            if len(self.val_targets) == 0:
                raise ValueError(
                    "data.meta_protocol val_split draws meta-val batches from the validation "
                    "split, but it has no images; add validation images or use "
                    "data.meta_protocol: holdout"
                )
            self.parts = {"train": np.arange(len(self.targets), dtype=np.int64),
                          "val": np.arange(len(self.val_targets), dtype=np.int64)}
        else:
            self.parts = {"train": np.empty(0, np.int64), "val": np.empty(0, np.int64)}
            self.new_round()

    @staticmethod
    def check_options(protocol: MetaProtocol, fraction: float, batch_size: int,
                      min_train_per_class: int = 5) -> None:
        """Refuse bad options, naming the field (called at datamodule construction too)."""
        check_choice(protocol, MetaProtocol, "data.meta_protocol")
        if not 0 < fraction <= 1:
            raise ValueError(f"data.meta_fraction must be in (0, 1], got {fraction}")
        if batch_size < 1:
            raise ValueError(f"data.meta_batch_size must be >= 1, got {batch_size}")
        if int(min_train_per_class) != min_train_per_class or min_train_per_class < 1:
            raise ValueError(
                "data.meta_min_train_per_class must be an integer >= 1 (the inner step needs an "
                f"image of every class), got {min_train_per_class}"
            )

    @property
    def train_indices(self) -> np.ndarray:
        """Indices (into ``targets``) of the images the inner step trains on."""
        if self.protocol == "holdout":
            return self.parts["train"]
        return np.arange(len(self.targets), dtype=np.int64)

    @property
    def held_out(self) -> np.ndarray:
        """Indices (into ``targets``) removed from inner training: the ``holdout``; else empty."""
        if self.protocol != "holdout":
            return np.empty(0, np.int64)
        return self.parts["val"]

    def labels(self, part: str) -> np.ndarray:
        """Labels that the indices of ``part`` point to."""
        return self.val_targets if part == "val" and self.protocol == "val_split" else self.targets

    def new_round(self) -> None:
        """Start an outer step: ``resample`` draws a fresh meta set (the others keep theirs)."""
        if self.protocol != "resample":
            return
        n = len(self.targets)
        k = max(2, int(round(self.fraction * n)))
        chosen = self.rng.choice(n, size=min(k, n), replace=False)
        half = len(chosen) // 2
        self.parts = {"train": np.sort(chosen[half:]), "val": np.sort(chosen[:half])}
        self._order, self._pos = {}, {}

    def draw(self, part: str) -> np.ndarray:
        """Return the indices of the next batch of ``part`` (``train`` or ``val``)."""
        if part not in ("train", "val"):
            raise ValueError(f"meta part must be train or val, got {part!r}")
        pool = self.parts[part]
        if len(pool) == 0:
            raise ValueError(
                f"the meta-{part} set is empty; raise data.meta_fraction (now {self.fraction}) "
                "or use data.meta_protocol: val_split"
            )
        if part == "val" and self.balanced_val:
            return self._balanced(pool, self.labels(part))
        return self._next_pass_slice(part, pool)

    def _next_pass_slice(self, part: str, pool: np.ndarray) -> np.ndarray:
        # Endless reshuffled passes: a batch never repeats an index within a pass.
        size = min(self.batch_size, len(pool))
        if part not in self._order or self._pos[part] + size > len(self._order[part]):
            self._order[part], self._pos[part] = self.rng.permutation(pool), 0
        start = self._pos[part]
        self._pos[part] = start + size
        return self._order[part][start:start + size]

    def _balanced(self, pool: np.ndarray, labels: np.ndarray) -> np.ndarray:
        pool_labels = labels[pool]
        classes = np.unique(pool_labels)
        # Spread the batch evenly; the remainder goes to randomly chosen classes.
        per = np.full(len(classes), self.batch_size // len(classes))
        per[self.rng.choice(len(classes), self.batch_size % len(classes), replace=False)] += 1
        picks = []
        for c, k in zip(classes, per, strict=True):
            members = pool[pool_labels == c]
            picks.append(self.rng.choice(members, size=k, replace=k > len(members)))
        return self.rng.permutation(np.concatenate(picks))

    def _identity(self) -> dict[str, Any]:
        # What decides the meta split: a checkpoint must match it to continue the same draws.
        return {"protocol": self.protocol,
                "fraction": None if self.protocol == "val_split" else self.fraction,
                "min_train_per_class": (self.min_train_per_class
                                        if self.protocol == "holdout" else None)}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence of draws."""
        return {
            **self._identity(), "fraction": self.fraction, "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "parts": {k: v.tolist() for k, v in self.parts.items()},
            "order": {k: v.tolist() for k, v in self._order.items()},
            "pos": dict(self._pos),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (protocol, split options and split must match).

        Raises:
            ValueError: the checkpoint was written with another ``data.meta_protocol``,
                ``data.meta_fraction`` or ``data.meta_min_train_per_class``, or on other data.
        """
        theirs = {
            "protocol": state.get("protocol"),
            "fraction": None if state.get("protocol") == "val_split" else state.get("fraction"),
            "min_train_per_class": (state.get("min_train_per_class", 5)
                                    if state.get("protocol") == "holdout" else None),
        }
        mine = self._identity()
        if theirs != mine:
            raise ValueError(
                f"the checkpoint's meta protocol ({_describe(theirs)}) differs from this run's "
                f"({_describe(mine)}); resume with the checkpoint's data.meta_protocol, "
                "data.meta_fraction and data.meta_min_train_per_class"
            )
        parts = {k: np.asarray(v, np.int64) for k, v in state["parts"].items()}
        if self.protocol != "resample" and any(
            not np.array_equal(parts[k], self.parts[k]) for k in self.parts
        ):
            raise ValueError(
                f"the checkpoint's meta split (data.meta_protocol {self.protocol}) differs from "
                "the one drawn from this data; resume on the same data (splits, "
                "data.imbalance_ratio, data.seed) as the checkpoint"
            )
        self.rng.bit_generator.state = state["rng"]
        self.parts = parts
        self._order = {k: np.asarray(v, np.int64) for k, v in state["order"].items()}
        self._pos = {k: int(v) for k, v in state["pos"].items()}


def rarest_labels(labels: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """The rarest label (by ``counts``) of every sample of a multi-hot ``(N, K)`` matrix.

    A sample without labels gets ``-1``.

    Example:
        >>> rarest_labels(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0]]), [50, 3, 10]).tolist()
        [1, 2, -1]
    """
    labels = np.asarray(labels, dtype=bool)
    rank = np.where(labels, np.asarray(counts, dtype=np.float64)[None, :], np.inf)
    out = rank.argmin(1).astype(np.int64)
    out[~labels.any(1)] = -1
    return out


class MultiLabelMetaSampler(MetaSampler):
    """:class:`MetaSampler` for multi-label data: label-balanced meta-val batches.

    Every protocol works as for single-label data on each sample's rarest label (by training
    frequency, :func:`rarest_labels`): the ``holdout`` is stratified by it and never takes a
    label's last ``min_train_per_class`` samples of that stratum. Balanced meta-val batches give
    every label present in the pool an equal share of the batch, each share drawn among the
    samples that carry the label (with replacement when it has fewer), the remainder going to
    randomly chosen labels; a sample drawn for one label brings its other labels along.

    Args:
        labels: ``(N, K)`` multi-hot labels of the training set (before a ``holdout``).
        protocol: ``holdout``, ``val_split`` or ``resample``.
        fraction: as :class:`MetaSampler`.
        batch_size: as :class:`MetaSampler`.
        balanced_val: draw label-balanced meta-val batches.
        seed: as :class:`MetaSampler`.
        min_train_per_class: as :class:`MetaSampler`, per rarest-label stratum.
        val_labels: ``(M, K)`` multi-hot labels of the validation split (``val_split`` only).
    """

    def __init__(self, labels: np.ndarray, protocol: MetaProtocol = "val_split",
                 fraction: float = 0.2, batch_size: int = 32, balanced_val: bool = True,
                 seed: int = 0, min_train_per_class: int = 5,
                 val_labels: np.ndarray | None = None) -> None:
        self.label_matrix = np.asarray(labels, dtype=np.uint8)
        self.val_label_matrix = np.asarray(
            val_labels if val_labels is not None else np.zeros((0, self.label_matrix.shape[1])),
            np.uint8)
        counts = self.label_matrix.sum(0)
        num_labels = self.label_matrix.shape[1]

        def strata(matrix: np.ndarray) -> np.ndarray:
            rarest = rarest_labels(matrix, counts)
            return np.where(rarest < 0, num_labels, rarest)  # samples without labels: one more

        super().__init__(strata(self.label_matrix), protocol, fraction, batch_size, balanced_val,
                         seed, min_train_per_class, strata(self.val_label_matrix))

    def labels(self, part: str) -> np.ndarray:
        """Multi-hot labels, ``(N, K)``, that the indices of ``part`` point to."""
        if part == "val" and self.protocol == "val_split":
            return self.val_label_matrix
        return self.label_matrix

    def _balanced(self, pool: np.ndarray, labels: np.ndarray) -> np.ndarray:
        pool_labels = labels[pool].astype(bool)
        present = np.flatnonzero(pool_labels.any(0))
        if len(present) == 0:  # a pool of unlabelled samples: nothing to balance
            return self.rng.choice(pool, size=self.batch_size, replace=len(pool) < self.batch_size)
        per = np.full(len(present), self.batch_size // len(present))
        per[self.rng.choice(len(present), self.batch_size % len(present), replace=False)] += 1
        picks = []
        for label, k in zip(present, per, strict=True):
            if k == 0:
                continue
            members = pool[pool_labels[:, label]]
            picks.append(self.rng.choice(members, size=k, replace=k > len(members)))
        return self.rng.permutation(np.concatenate(picks))


def _describe(identity: dict[str, Any]) -> str:
    text = f"data.meta_protocol={identity['protocol']}"
    if identity["fraction"] is not None:
        text += f", data.meta_fraction={identity['fraction']}"
    if identity["min_train_per_class"] is not None:
        text += f", data.meta_min_train_per_class={identity['min_train_per_class']}"
    return text
