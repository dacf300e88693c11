"""The built-in synthetic long-tailed Sentinel-2 set, read by TorchGeo's EuroSAT."""

from __future__ import annotations

from typing import Any

from ..synthetic import generate_eurosat_like
from .eurosat import EuroSATLongTailDataModule
from .synthetic import SyntheticDataMixin

__all__ = ["SyntheticEuroSATDataModule"]


class SyntheticEuroSATDataModule(SyntheticDataMixin, EuroSATLongTailDataModule):
    """The built-in synthetic long-tailed Sentinel-2 set, generated on first use, read by EuroSAT.

    Args:
        root: where the generated files go.
        **kwargs: the generator's options (:class:`.SyntheticDataMixin`: ``num_classes``,
            ``max_per_class`` ...), ``bands`` (a subset to load) and
            :class:`LongTailDataModule` options.
    """

    generate = staticmethod(generate_eurosat_like)

    def __init__(self, root: str = "data/demo_s2", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
