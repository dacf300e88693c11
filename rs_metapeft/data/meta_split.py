"""Where MetaPEFT's meta batches come from: the ``holdout`` and ``resample`` protocols.

* ``holdout`` (the released code): a fixed, stratified fraction of the training set, split into
  disjoint meta-train and meta-val halves; batches are endless reshuffled passes over each half.
* ``resample`` (the paper): for every outer step a fresh random ``fraction`` of the training set
  is drawn and split into meta-train and meta-val halves, and the batches come from it.

Either can draw a class-balanced meta-val batch (equal counts per class, with replacement inside
a class when it is short). All randomness comes from one numpy generator whose state (with the
pass positions) is :meth:`MetaSampler.state_dict`, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .longtail import stratified_meta_split

__all__ = ["META_PROTOCOLS", "MetaSampler"]

#: The meta-data protocols.
META_PROTOCOLS = ("holdout", "resample")


class MetaSampler:
    """Index batches for the outer step's meta-train and meta-val parts.

    Args:
        targets: labels of the training set the indices point into.
        protocol: ``holdout`` or ``resample``.
        fraction: share of the training set in the meta set (per class for ``holdout``; the
            paper's ``resample`` uses 0.2-0.3).
        batch_size: indices per batch.
        balanced_val: draw meta-val batches with equal counts per class.
        seed: seed of the split and of every draw.
        keep_for_training: with ``holdout``, leave at least one image of every class out of
            the meta set (for a meta set removed from inner training).

    """

    def __init__(
        self,
        targets: Sequence[int],
        protocol: str = "holdout",
        fraction: float = 0.2,
        batch_size: int = 32,
        balanced_val: bool = False,
        seed: int = 0,
        keep_for_training: bool = False,
    ) -> None:
        if protocol not in META_PROTOCOLS:
            raise ValueError(
                f"data.meta_protocol must be one of {', '.join(META_PROTOCOLS)}, got {protocol!r}"
            )
        if not 0 < fraction <= 1:
            raise ValueError(f"data.meta_fraction must be in (0, 1], got {fraction}")
        if batch_size < 1:
            raise ValueError(f"data.meta_batch_size must be >= 1, got {batch_size}")
        self.targets = np.asarray(targets)
        self.protocol = protocol
        self.fraction = fraction
        self.batch_size = batch_size
        self.balanced_val = balanced_val
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        if protocol == "holdout":
            self.parts = dict(zip(("train", "val"), stratified_meta_split(targets, fraction, seed),
                                  strict=True))
            if keep_for_training:
                self._keep_one_per_class()
        else:
            self.parts = {"train": np.empty(0, np.int64), "val": np.empty(0, np.int64)}
            self.new_round()
        self._order: dict[str, np.ndarray] = {}
        self._pos: dict[str, int] = {}

    def _keep_one_per_class(self) -> None:
        held = self.held_out
        for c in np.unique(self.targets):
            if np.count_nonzero(self.targets == c) > np.count_nonzero(self.targets[held] == c):
                continue
            # Every image of this class is held out: give one back, from meta-train if it can.
            part = "train" if np.any(self.targets[self.parts["train"]] == c) else "val"
            pool = self.parts[part]
            drop = pool[np.flatnonzero(self.targets[pool] == c)[0]]
            self.parts[part] = pool[pool != drop]

    @property
    def held_out(self) -> np.ndarray:
        """Indices of a ``holdout`` meta set (both halves); empty for ``resample``."""
        if self.protocol != "holdout":
            return np.empty(0, np.int64)
        return np.sort(np.concatenate([self.parts["train"], self.parts["val"]]))

    def new_round(self) -> None:
        """Start an outer step: ``resample`` draws a fresh meta set (``holdout`` keeps its own)."""
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
                f"the meta-{part} set is empty; raise data.meta_fraction (now {self.fraction})"
            )
        if part == "val" and self.balanced_val:
            return self._balanced(pool)
        return self._next_pass_slice(part, pool)

    def _next_pass_slice(self, part: str, pool: np.ndarray) -> np.ndarray:
        # Endless reshuffled passes: a batch never repeats an index within a pass.
        size = min(self.batch_size, len(pool))
        if part not in self._order or self._pos[part] + size > len(self._order[part]):
            self._order[part], self._pos[part] = self.rng.permutation(pool), 0
        start = self._pos[part]
        self._pos[part] = start + size
        return self._order[part][start:start + size]

    def _balanced(self, pool: np.ndarray) -> np.ndarray:
        classes = np.unique(self.targets[pool])
        # Spread the batch evenly; the remainder goes to randomly chosen classes.
        per = np.full(len(classes), self.batch_size // len(classes))
        per[self.rng.choice(len(classes), self.batch_size % len(classes), replace=False)] += 1
        picks = []
        for c, k in zip(classes, per, strict=True):
            members = pool[self.targets[pool] == c]
            picks.append(self.rng.choice(members, size=k, replace=k > len(members)))
        return self.rng.permutation(np.concatenate(picks))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence of draws."""
        return {
            "protocol": self.protocol, "fraction": self.fraction, "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "parts": {k: v.tolist() for k, v in self.parts.items()},
            "order": {k: v.tolist() for k, v in self._order.items()},
            "pos": dict(self._pos),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (the protocol and fraction must match)."""
        if (state["protocol"], state["fraction"]) != (self.protocol, self.fraction):
            raise ValueError(
                f"the checkpoint's meta protocol {state['protocol']}/{state['fraction']} differs "
                f"from data.meta_protocol/meta_fraction {self.protocol}/{self.fraction}"
            )
        self.rng.bit_generator.state = state["rng"]
        self.parts = {k: np.asarray(v, np.int64) for k, v in state["parts"].items()}
        self._order = {k: np.asarray(v, np.int64) for k, v in state["order"].items()}
        self._pos = {k: int(v) for k, v in state["pos"].items()}
