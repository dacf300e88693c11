"""The built-in synthetic multi-label set, in BigEarthNet's layout, read by TorchGeo's class."""

from __future__ import annotations

from typing import Any

from ..bigearthnet import MultiLabelSpec, generate_bigearthnet_like
from .bigearthnet import BigEarthNetDataModule

__all__ = ["SyntheticBigEarthNetDataModule"]

_DEFAULT = MultiLabelSpec()


class SyntheticBigEarthNetDataModule(BigEarthNetDataModule):
    """A synthetic multi-label, long-tailed S1 + S2 set, generated on first use into ``root``.

    See :class:`~rs_metapeft.data.bigearthnet.MultiLabelSpec` for the generator's options.

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
        **kwargs: :class:`BigEarthNetDataModule` options (``bands``, ``num_classes`` ...).
    """

    def __init__(
        self,
        root: str = "data/demo_bigearthnet",
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
        super().__init__(root=root, **kwargs)
        self.spec = MultiLabelSpec(num_train, num_val, num_test, label_imbalance_ratio,
                                   head_frequency, co_occurrence, min_label_count, patch_size,
                                   data_seed)

    def prepare_data(self) -> None:
        """Generate the files unless the same spec already lies in ``root``."""
        generate_bigearthnet_like(self.root, self.spec)
