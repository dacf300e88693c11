"""The generator options that the built-in synthetic datamodules share, declared once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..synthetic import SyntheticSpec, _already_written

__all__ = ["SyntheticDataMixin"]


class SyntheticDataMixin:
    """Generates a synthetic long-tailed set into ``root`` on first use; mixed into a datamodule.

    The generator's size options live here (their defaults are :class:`SyntheticSpec`'s); a
    concrete datamodule names the generator, its default root and, as its other base, the
    datamodule that reads the files.

    Args:
        root: where the generated files go.
        num_classes: number of synthetic classes.
        synthetic_imbalance_ratio: head/tail ratio of the generated training split.
        max_per_class: training images of the head class.
        val_per_class: validation images per class.
        test_per_class: test images per class.
        image_size: chip size in pixels of the generated files.
        data_seed: generator seed.
        **kwargs: options of the datamodule that reads the files.
    """

    #: Writes the files of a spec under a root, unless the same spec already lies there.
    generate: Callable[[str | os.PathLike, SyntheticSpec], Any]
    root: str

    def __init__(
        self,
        root: str,
        num_classes: int = SyntheticSpec.num_classes,
        synthetic_imbalance_ratio: float = SyntheticSpec.imbalance_ratio,
        max_per_class: int = SyntheticSpec.max_per_class,
        val_per_class: int = SyntheticSpec.val_per_class,
        test_per_class: int = SyntheticSpec.test_per_class,
        image_size: int = SyntheticSpec.image_size,
        data_seed: int = SyntheticSpec.seed,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, num_classes=num_classes, **kwargs)  # type: ignore[call-arg]
        self.spec = SyntheticSpec(
            num_classes, synthetic_imbalance_ratio, max_per_class, val_per_class,
            test_per_class, image_size, data_seed,
        )

    def prepare_data(self) -> None:
        """Generate the GeoTIFFs unless the same spec already lies in ``root`` (and say so)."""
        if not _already_written(Path(self.root), self.spec):
            print(f"Generating the synthetic data set in {self.root} (first use; later runs "
                  "with the same settings reuse it) ...", flush=True)
        self.generate(self.root, self.spec)
