"""A training DataLoader that Lightning can resume mid-epoch, batch for batch.

Lightning saves and restores the state of loaders that implement ``state_dict`` /
``load_state_dict``. This loader records its sampler generator's state at the start of each
epoch and how many batches it has handed out; on restore it replays the epoch's order and skips,
at the batch-sampler level (no data is loaded for skipped batches, even with workers), what the
interrupted run had already trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

__all__ = ["ResumableDataLoader"]

class _SkippingBatchSampler:
    """Wraps a batch sampler; skips the first ``skip`` batches of the next pass."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.skip = 0

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(self.inner):
            if i >= skip:
                yield batch


def _sampler_generator(loader: DataLoader) -> torch.Generator | None:
    for owner in (loader.sampler, getattr(loader.batch_sampler, "sampler", None), loader):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
    return None


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` with ``state_dict`` / ``load_state_dict`` for exact mid-epoch resume.

    Exact when the sampler's randomness comes from a ``torch.Generator`` (``shuffle=True`` with a
    ``generator``, or a sampler with a ``generator`` attribute); takes the same arguments as
    ``DataLoader``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # DataLoader forbids reassigning batch_sampler after construction; keep the wrapper aside.
        self._skipper = _SkippingBatchSampler(self.batch_sampler if self.batch_sampler is not None
                                              else self.sampler)
        self._epoch_state: torch.Tensor | None = None
        self._restore_state: torch.Tensor | None = None
        self._restore_new_iterator = True
        self._new_iterator = True
        self._served = 0
        self._finished = False

    def _reuses_iterator(self) -> bool:
        """Whether the next pass reuses live persistent workers (no new iterator)."""
        return self.persistent_workers and self.num_workers > 0 and self._iterator is not None

    @property
    def _index_sampler(self):  # noqa: D401 - DataLoader's hook for the iterator's index source
        return self._skipper

    def __iter__(self):
        generator = _sampler_generator(self)
        if self._restore_state is not None and not self._restore_new_iterator:
            # The interrupted pass reused persistent workers, whose start had drawn their base
            # seed from this generator epochs before; start them now, before the replay, so the
            # replayed order is drawn from the saved state alone.
            skip, self._skipper.skip = self._skipper.skip, 0
            if not self._reuses_iterator():
                self._iterator = self._get_iterator()
            self._skipper.skip = skip
        self._new_iterator = not self._reuses_iterator()
        if generator is not None:
            if self._restore_state is not None:
                generator.set_state(self._restore_state)
            self._epoch_state = generator.get_state()
        self._restore_state = None
        self._served = self._skipper.skip
        self._finished = False
        for batch in super().__iter__():
            self._served += 1
            yield batch
        self._finished = True

    def state_dict(self) -> dict[str, Any]:
        """Sampler generator state at the epoch start and the batches already trained on.

        Also whether the pass started its workers: persistent ones draw a seed from the
        generator only when they start.
        """
        generator = _sampler_generator(self)
        # Lightning does not prefetch from sized loaders, so what was served was trained on.
        if self._finished or self._epoch_state is None or self._served >= len(self):
            # Between epochs: the next pass starts from the generator as it is now.
            now = generator.get_state() if generator is not None else None
            return {"epoch_start": now, "consumed": 0, "new_iterator": not self._reuses_iterator()}
        return {"epoch_start": self._epoch_state, "consumed": self._served,
                "new_iterator": self._new_iterator}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next pass replay the saved epoch, skipping the consumed batches."""
        self._restore_state = state.get("epoch_start")
        self._skipper.skip = int(state.get("consumed", 0))
        self._restore_new_iterator = bool(state.get("new_iterator", True))
