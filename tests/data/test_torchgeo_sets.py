import pytest
import torch
from torchgeo.datasets import RESISC45, CopernicusBenchEuroSATS1, So2Sat, UCMerced
from torchgeo.datasets.errors import DatasetNotFoundError

from rs_metapeft.data import (
    EuroSATLongTailDataModule,
    EuroSATS1LongTailDataModule,
    RESISC45LongTailDataModule,
    So2SatLongTailDataModule,
    UCMercedLongTailDataModule,
)
from tests.data.fakes import (
    make_fake_eurosat,
    make_fake_eurosat_s1,
    make_fake_resisc45,
    make_fake_so2sat,
    make_fake_ucmerced,
)


def _fit(dm):
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    return batch


def test_so2sat_hdf5_through_torchgeo_and_wrapper(tmp_path):
    counts = [6] * 8 + [2] * 9  # 17 LCZ classes, already long-tailed
    root = make_fake_so2sat(tmp_path, per_class=counts)
    raw = So2Sat(str(root), split="train", bands=("S1_B5", "S1_B6", "S2_B04"), checksum=False)
    sample = raw[0]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    dm = So2SatLongTailDataModule(root=str(root), bands=["VH", "VV", "B04", "B08"], batch_size=8)
    batch = _fit(dm)
    assert dm.bands == ["VH", "VV", "B04", "B08"]
    assert batch["image"].shape == (8, 4, 32, 32)
    assert dm.train_counts == counts and len(dm.class_names) == 17
    assert len(dm.val_dataset) == 17
    # statistics are over the real channel values: the S2 bands are reflectance in [0, ~0.5]
    assert 0 < dm.band_stats.mean[2] < 0.5 and dm.band_stats.p02[2] < dm.band_stats.p98[2]


def test_so2sat_v3_holds_out_a_stratified_validation_split(tmp_path):
    root = make_fake_so2sat(tmp_path, per_class=5, version="3_random")
    dm = So2SatLongTailDataModule(root=str(root), version="3_random", bands=["VV"],
                                  val_fraction=0.2, batch_size=4)
    dm.setup("fit")
    assert dm.train_counts == [4] * 17 and len(dm.val_dataset) == 17
    assert not set(dm.train_dataset.indices) & set(dm.val_dataset.indices)


def test_so2sat_rejects_complex_channels_and_wrong_order():
    with pytest.raises(ValueError, match="not a usable So2Sat band"):
        So2SatLongTailDataModule(bands=["S1_B1"])
    with pytest.raises(ValueError, match="Sentinel-1 channels before"):
        So2SatLongTailDataModule(bands=["B04", "VV"])


def test_so2sat_versions_are_torchgeos():
    """data.version's choices are written out (so --help lists them); they must be TorchGeo's."""
    from typing import get_args

    from rs_metapeft.data.datamodules.so2sat import So2SatVersion

    assert get_args(So2SatVersion) == tuple(So2Sat.versions)
    with pytest.raises(ValueError, match="data.version must be one of 2, 3_random"):
        So2SatLongTailDataModule(version="4")


def test_eurosat_s1_through_copernicus_bench_class(tmp_path):
    root = make_fake_eurosat_s1(tmp_path, per_class=3)
    raw = CopernicusBenchEuroSATS1(str(root), split="train")
    assert raw[0]["image"].shape == (2, 16, 16)
    dm = EuroSATS1LongTailDataModule(root=str(root), batch_size=4, imbalance_ratio=3,
                                     sampler="class_balanced")
    batch = _fit(dm)
    assert batch["image"].shape == (4, 2, 16, 16)
    assert dm.train_counts[0] == 3 and dm.train_counts[-1] == 1
    assert dm.class_names == list(CopernicusBenchEuroSATS1.classes)


def test_eurosat_band_subset(tmp_path):
    root = make_fake_eurosat(tmp_path)
    dm = EuroSATLongTailDataModule(root=str(root), bands=["B04", "B03", "B02"], num_classes=4,
                                   batch_size=4)
    assert _fit(dm)["image"].shape == (4, 3, 16, 16)


@pytest.mark.parametrize("kind", ["resisc45", "ucmerced"])
def test_rgb_scene_datasets(tmp_path, kind):
    if kind == "resisc45":
        root, cls, dm_cls = make_fake_resisc45(tmp_path), RESISC45, RESISC45LongTailDataModule
    else:
        root, cls, dm_cls = make_fake_ucmerced(tmp_path), UCMerced, UCMercedLongTailDataModule
    raw = cls(str(root), split="train")
    side = 256 if kind == "ucmerced" else 32  # TorchGeo resizes UC Merced to 256
    assert raw[0]["image"].shape == (3, side, side) and len(raw) == 9
    dm = dm_cls(root=str(root), num_classes=3, batch_size=4, image_size=24,
                imbalance_ratio=3, longtail_profile="step")
    dm.setup("fit")
    assert dm.train_counts == [3, 3, 1]  # step profile: the second half keeps 1/3
    batch = next(iter(dm.train_dataloader()))
    out = dm.train_aug(batch)
    assert out["image"].shape == (4, 3, 24, 24)
    assert dm.aug(next(iter(dm.val_dataloader())))["image"].shape[-1] == 24
    assert 0 < dm.band_stats.mean[0] < 255  # raw 0-255 values, never rescaled by a default


def test_missing_root_says_what_to_do(tmp_path):
    dm = RESISC45LongTailDataModule(root=str(tmp_path / "nowhere"), num_classes=3)
    with pytest.raises(DatasetNotFoundError, match="use `download=True`"):
        dm.setup("fit")
