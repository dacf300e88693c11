"""Class-aware training samplers for long-tailed data.

Every sampler draws a class with probability ``p_c ∝ n_c ** q`` and then a sample of that class
uniformly: ``q = 1`` is plain instance sampling, ``q = 0`` class-balanced, ``q = 1/2``
square-root sampling. The progressively balanced sampler (Kang et al., ICLR 2020) moves from
instance to class-balanced sampling over training: ``p_c(t) = (1 - t/T) p_c^IB + (t/T) p_c^CB``.
Lightning calls :meth:`ClassAwareSampler.set_epoch` every epoch, so each epoch draws afresh and
the progressive schedule advances.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, get_args

import numpy as np
from torch.utils.data import Sampler

from ..choices import check_choice

__all__ = [
    "SAMPLERS", "ClassAwareKind", "ClassAwareSampler", "SamplerKind", "build_sampler",
    "class_probabilities",
]

#: What :class:`ClassAwareSampler` draws by.
ClassAwareKind = Literal["class_balanced", "sqrt", "progressive"]
#: Sampler names a recipe can give as ``data.sampler`` (``shuffle``: the loader shuffles).
SamplerKind = Literal["shuffle", ClassAwareKind]
SAMPLERS = get_args(SamplerKind)

_EXPONENT = {"class_balanced": 0.0, "sqrt": 0.5, "instance": 1.0}


def class_probabilities(counts: Sequence[int], kind: str, progress: float = 0.0) -> np.ndarray:
    """Probability of drawing each class.

    Args:
        counts: training samples per class (classes with none get probability 0).
        kind: ``"instance"``, ``"class_balanced"``, ``"sqrt"`` or ``"progressive"``.
        progress: for ``"progressive"``, the share of training done, ``t / T`` in [0, 1].

    Returns:
        Probabilities summing to 1.

    Example:
        >>> class_probabilities([9, 1], "sqrt").round(2).tolist()
        [0.75, 0.25]
    """
    n = np.asarray(counts, dtype=np.float64)
    present = n > 0
    if kind == "progressive":
        t = float(np.clip(progress, 0.0, 1.0))
        return (1 - t) * class_probabilities(n, "instance") + t * class_probabilities(
            n, "class_balanced"
        )
    if kind not in _EXPONENT:
        raise ValueError(f"unknown sampling kind {kind!r}; use one of {sorted(_EXPONENT)}")
    p = np.where(present, np.power(np.where(present, n, 1.0), _EXPONENT[kind]), 0.0)
    return p / p.sum()


class ClassAwareSampler(Sampler[int]):
    """Draw ``num_samples`` indices per epoch, class first (with replacement), then a sample.

    Args:
        targets: label of every training sample.
        kind: ``"class_balanced"``, ``"sqrt"`` or ``"progressive"``.
        num_samples: indices per epoch (default: the dataset size, so an epoch is as long as
            with shuffling).
        total_epochs: ``T`` of the progressive schedule.
        seed: base seed; epoch ``e`` draws with ``seed + e``, so runs are repeatable.
    """

    def __init__(
        self,
        targets: Sequence[int],
        kind: ClassAwareKind,
        num_samples: int | None = None,
        total_epochs: int = 1,
        seed: int = 0,
    ) -> None:
        check_choice(kind, ClassAwareKind, "ClassAwareSampler kind")
        self.targets = np.asarray(targets, dtype=np.int64)
        self.kind = kind
        self.num_samples = int(num_samples or len(self.targets))
        self.total_epochs = max(int(total_epochs), 1)
        self.seed = seed
        self.epoch = 0
        num_classes = int(self.targets.max()) + 1 if len(self.targets) else 0
        self.counts = np.bincount(self.targets, minlength=num_classes)
        self.by_class = [np.flatnonzero(self.targets == c) for c in range(num_classes)]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (Lightning calls this at the start of every training epoch)."""
        self.epoch = epoch

    def probabilities(self) -> np.ndarray:
        """Class probabilities of the current epoch."""
        progress = self.epoch / max(self.total_epochs - 1, 1)
        return class_probabilities(self.counts, self.kind, progress)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        classes = rng.choice(len(self.counts), size=self.num_samples, p=self.probabilities())
        picks = np.empty(self.num_samples, dtype=np.int64)
        for c in np.unique(classes):
            slots = np.flatnonzero(classes == c)
            picks[slots] = rng.choice(self.by_class[c], size=len(slots), replace=True)
        return iter(picks.tolist())

    def __len__(self) -> int:
        return self.num_samples


def build_sampler(
    name: SamplerKind, targets: Sequence[int], total_epochs: int = 1, seed: int = 0
) -> Sampler[int] | None:
    """The sampler a recipe names; ``None`` for ``"shuffle"`` (the loader shuffles).

    Args:
        name: one of :data:`SAMPLERS`.
        targets: training labels.
        total_epochs: length of the progressive schedule in epochs.
        seed: sampling seed.

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    if check_choice(name, SamplerKind, "data.sampler") == "shuffle":
        return None
    return ClassAwareSampler(targets, name, total_epochs=total_epochs, seed=seed)

