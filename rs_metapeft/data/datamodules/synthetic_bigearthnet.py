"""The built-in synthetic multi-label set, in BigEarthNet's layouts, read by TorchGeo's classes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..bigearthnet import MultiLabelSpec, generate_bigearthnet_like, generate_bigearthnet_v2_like
from .bigearthnet import BigEarthNetDataModule
from .bigearthnet_v2 import BigEarthNetV2DataModule

__all__ = ["SyntheticBigEarthNetDataModule", "SyntheticBigEarthNetV2DataModule"]

_DEFAULT = MultiLabelSpec()


class _SyntheticMultiLabelMixin:
    """Generates the synthetic multi-label set into ``root`` on first use; mixed into a datamodule.

    The generator's options live here (see :class:`~rs_metapeft.data.bigearthnet.MultiLabelSpec`);
    a concrete datamodule names the generator, its default root and, as its other base, the
    datamodule that reads the files.

    Args:
        root: where the generated files go.
        num_train: training patches.
        num_val: validation patches.
        num_test: test patches.
        label_imbalance_ratio: most / least frequent label's frequency.
        head_frequency: share of patches carrying the most frequent label.
        co_occurrence: latent correlation of labels within a CORINE level-1 group.
        min_label_count: every label is on in at least this many patches of every split.
        patch_size: pixels of the 10 m bands (a multiple of 6).
        data_seed: generator seed.
        **kwargs: options of the datamodule that reads the files (``bands``, ``num_classes`` ...).
    """

    #: Writes the files of a spec under a root, unless the same spec already lies there.
    generate: Callable[[str | os.PathLike, MultiLabelSpec], Any]
    root: str

    def __init__(
        self,
        root: str,
        num_train: int = _DEFAULT.num_train,
        num_val: int = _DEFAULT.num_val,
        num_test: int = _DEFAULT.num_test,
        label_imbalance_ratio: float = _DEFAULT.label_imbalance_ratio,
        head_frequency: float = _DEFAULT.head_frequency,
        co_occurrence: float = _DEFAULT.co_occurrence,
        min_label_count: int = _DEFAULT.min_label_count,
        patch_size: int = _DEFAULT.patch_size,
        data_seed: int = _DEFAULT.seed,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, **kwargs)  # type: ignore[call-arg]
        self.spec = MultiLabelSpec(num_train, num_val, num_test, label_imbalance_ratio,
                                   head_frequency, co_occurrence, min_label_count, patch_size,
                                   data_seed)

    def prepare_data(self) -> None:
        """Generate the files unless the same spec already lies in ``root``."""
        self.generate(self.root, self.spec)


class SyntheticBigEarthNetDataModule(_SyntheticMultiLabelMixin, BigEarthNetDataModule):
    """A synthetic multi-label, long-tailed S1 + S2 set in BigEarthNet v1's layout.

    Generated on first use into ``root`` and read by ``torchgeo.datasets.BigEarthNet``.

    Args:
        root: where the generated files go.
        **kwargs: the generator's options (``num_train``, ``label_imbalance_ratio``,
            ``patch_size``, ``data_seed`` ...: see
            :class:`~rs_metapeft.data.bigearthnet.MultiLabelSpec`) and
            :class:`BigEarthNetDataModule` options (``bands``, ``num_classes`` ...).
    """

    generate = staticmethod(generate_bigearthnet_like)

    def __init__(self, root: str = "data/demo_bigearthnet", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)


class SyntheticBigEarthNetV2DataModule(_SyntheticMultiLabelMixin, BigEarthNetV2DataModule):
    """The same synthetic set in BigEarthNet v2's layout, read by ``BigEarthNetV2`` (19 labels).

    Generated on first use into ``root`` (``metadata.parquet``: needs pyarrow).

    Args:
        root: where the generated files go.
        **kwargs: the generator's options (``num_train``, ``label_imbalance_ratio``,
            ``patch_size``, ``data_seed`` ...: see
            :class:`~rs_metapeft.data.bigearthnet.MultiLabelSpec`) and
            :class:`BigEarthNetV2DataModule` options (``bands``, ``classes`` ...).
    """

    generate = staticmethod(generate_bigearthnet_v2_like)

    def __init__(self, root: str = "data/demo_bigearthnet_v2", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
