import json

import pytest
import torch
from torchgeo.datasets import BigEarthNet

from rs_metapeft.data import (
    BigEarthNetDataModule,
    SyntheticBigEarthNetDataModule,
    build_datamodule,
)
from rs_metapeft.data.bigearthnet import BIGEARTHNET_ALL_BANDS, BIGEARTHNET_S2_BANDS
from rs_metapeft.models.stem import BandNormalizer


def _counts(root, split, num_classes):
    counts = json.loads((root / "synthetic.json").read_text())["label_counts"]
    return counts[split][str(num_classes)]


def test_fused_s1_s2_training_split(bigearthnet_root):
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), batch_size=4)
    dm.setup("fit")
    assert dm.bands == list(BIGEARTHNET_ALL_BANDS) and dm.multilabel
    assert dm.class_names == list(BigEarthNet.class_sets[19])
    assert dm.train_counts == _counts(bigearthnet_root, "train", 19)  # label frequencies
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 14, 120, 120) and batch["label"].shape == (4, 19)
    # reflectance and dB side by side, each band with its own statistics
    stats = dm.band_stats
    assert all(m < 0 for m in stats.mean[:2]) and all(m > 100 for m in stats.mean[2:])
    norm = BandNormalizer(14)
    norm.set_statistics(stats.mean, stats.std)
    images = torch.cat([b["image"] for b in dm._plain_loader(dm.train_dataset, False)])
    z = norm(images).transpose(0, 1).reshape(14, -1)
    assert torch.allclose(z.mean(1), torch.zeros(14), atol=1e-3)
    assert torch.allclose(z.std(1), torch.ones(14), atol=1e-2)


def test_band_list_keeps_channels_in_the_order_given(bigearthnet_root):
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), bands=["VV", "B04", "B03", "B02"],
                               num_classes=43)
    dm.setup("validate")
    full = BigEarthNet(str(bigearthnet_root), split="val", bands="all", num_classes=43)[0]
    ours = dm.val_dataset[0]
    index = [BIGEARTHNET_ALL_BANDS.index(b) for b in ("VV", "B04", "B03", "B02")]
    assert torch.equal(ours["image"], full["image"][index])
    assert torch.equal(ours["label"], full["label"])


@pytest.mark.parametrize(("bands", "channels"), [("s1", 2), ("s2", 12), (["VH", "VV"], 2)])
def test_one_sensor(bigearthnet_root, bands, channels):
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), bands=bands, num_classes=43)
    dm.setup("test")
    assert dm.test_dataset[0]["image"].shape[0] == channels == len(dm.bands)
    assert dm.sensors == ("s1" if channels == 2 else "s2")


def test_class_subset_keeps_label_columns(bigearthnet_root):
    names = ["Marine waters", "Coniferous forest"]
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), bands="s2", classes=names,
                               batch_size=2)
    dm.setup("fit")
    assert dm.num_classes == 2 and dm.class_names == names
    order = [BigEarthNet.class_sets[19].index(n) for n in names]
    full = _counts(bigearthnet_root, "train", 19)
    assert dm.train_counts == [full[i] for i in order]
    labels = torch.stack([s["label"] for s in dm.train_dataset])
    assert labels.shape[1] == 2 and (labels.sum(1) >= 1).all()  # scenes of neither left out
    assert len(dm.train_dataset) < 12


def test_recipe_data_section_builds_it(bigearthnet_root):
    dm = build_datamodule({"class_path": "rs_metapeft.data.BigEarthNetDataModule",
                           "init_args": {"root": str(bigearthnet_root), "bands": "s2",
                                         "num_classes": 43}})
    assert dm.bands == list(BIGEARTHNET_S2_BANDS) and dm.label_set == 43
    dm = build_datamodule({"class_path": "rs_metapeft.data.BigEarthNetDataModule",
                           "init_args": {"bands": ["VV", "B08"]}})
    assert dm.sensors == "all" and dm.channels == [1, 9]


def test_synthetic_datamodule_generates_on_first_use(tmp_path):
    dm = SyntheticBigEarthNetDataModule(root=str(tmp_path), num_train=6, num_val=2, num_test=2,
                                        patch_size=6, bands=["VV", "B04"],
                                        classes=["Arable land", "Pastures"], batch_size=2)
    dm.prepare_data()
    assert (tmp_path / "bigearthnet-train.csv").read_text().count("\n") == 6
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["label"].shape == (2, 2)


def test_missing_files_are_named(tmp_path):
    (tmp_path / "bigearthnet-val.csv").write_text("")
    dm = BigEarthNetDataModule(root=str(tmp_path), bands="s1")
    with pytest.raises(FileNotFoundError, match=r"bigearthnet-train\.csv.*BigEarthNet-S1-v1\.0/"
                                                r".*data\.download: true"):
        dm.setup("fit")


def test_missing_patch_folder_is_named(tmp_path, bigearthnet_root):
    import shutil

    root = tmp_path / "ben"
    shutil.copytree(bigearthnet_root, root)
    s2, _ = (root / "bigearthnet-train.csv").read_text().splitlines()[3].split(",")
    shutil.rmtree(root / "BigEarthNet-v1.0" / s2)
    dm = BigEarthNetDataModule(root=str(root), bands="s2")
    with pytest.raises(FileNotFoundError, match=rf"{s2}.*bigearthnet-train\.csv"):
        dm.setup("fit")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_classes": 10}, "19 or 43"),
    ({"bands": ["VV", "B10"]}, r"\['B10'\] are not BigEarthNet bands"),
    ({"bands": "s3"}, "give s1, s2, all"),
    ({"imbalance_ratio": 10}, "data.imbalance_ratio"),
    ({"sampler": "class_balanced"}, "data.sampler: shuffle"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BigEarthNetDataModule(**kwargs)


def test_meta_val_batches_come_from_the_validation_split_label_balanced(bigearthnet_root):
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), bands="s1", batch_size=4,
                               meta_batch_size=19)
    dm.setup("fit")
    assert dm.meta_datasets["val"] is dm.val_dataset  # never fitted by the inner steps
    dm.new_meta_round()
    batch = dm.meta_batch("val")
    assert batch["image"].shape == (19, 2, 120, 120) and batch["label"].shape == (19, 19)
    # label-balanced: every label of the validation split is in the batch
    val_labels = torch.stack([s["label"] for s in dm.val_dataset])
    assert ((batch["label"].sum(0) > 0) == (val_labels.sum(0) > 0)).all()
    assert dm.meta_batch("train")["label"].shape == (12, 19)  # one pass of the 12 samples


def test_holdout_meta_set_is_left_out_of_training(bigearthnet_root):
    dm = BigEarthNetDataModule(root=str(bigearthnet_root), bands="s1", batch_size=4,
                               meta_protocol="holdout", meta_fraction=0.3,
                               meta_min_train_per_class=1)
    dm.setup("fit")
    held = set(dm.meta_sampler.held_out.tolist())
    assert held and held.isdisjoint(dm.train_dataset.indices)
    assert dm.train_samples == len(dm.train_dataset) == 12 - len(held)
    counts = torch.stack([s["label"] for s in dm.train_dataset]).sum(0).tolist()
    assert dm.train_counts == counts  # frequencies of the samples trained on


def test_label_matrix_is_cached_with_the_statistics(bigearthnet_root, tmp_path, monkeypatch):
    from rs_metapeft.data.datamodules.bigearthnet import _BigEarthNetWithLabels

    first = BigEarthNetDataModule(root=str(bigearthnet_root), bands="s1", stats_cache=str(tmp_path))
    first.setup("fit")
    # the training split's, and the validation split's (the meta sampler draws by its labels)
    assert len(list(tmp_path.glob("bigearthnet-labels-*.npy"))) == 2

    def unread(self):
        raise AssertionError("a cached label matrix reads no JSON file")

    monkeypatch.setattr(_BigEarthNetWithLabels, "_read_labels", unread)
    again = BigEarthNetDataModule(root=str(bigearthnet_root), bands="s1", stats_cache=str(tmp_path))
    again.setup("fit")
    assert again.train_counts == first.train_counts
    assert again.band_stats.mean == first.band_stats.mean
