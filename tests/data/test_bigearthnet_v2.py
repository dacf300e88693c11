"""BigEarthNet v2: the generated layout read by TorchGeo's BigEarthNetV2, and its datamodules."""

import json
import shutil

import pandas as pd
import pytest
import rasterio
import torch
from torchgeo.datasets import BigEarthNet, BigEarthNetV2

from rs_metapeft.data import (
    BigEarthNetV2DataModule,
    SyntheticBigEarthNetV2DataModule,
    build_datamodule,
    generate_bigearthnet_like,
    generate_bigearthnet_v2_like,
)
from rs_metapeft.data.bigearthnet import (
    BIGEARTHNET_ALL_BANDS,
    BIGEARTHNET_S1_BANDS,
    BIGEARTHNET_S2_BANDS,
    MultiLabelSpec,
)
from rs_metapeft.extras import MissingExtraError

CHANNELS = {"s1": BIGEARTHNET_S1_BANDS, "s2": BIGEARTHNET_S2_BANDS}
TINY = MultiLabelSpec(num_train=2, num_val=1, num_test=1, min_label_count=0, patch_size=6)


def _manifest(root):
    return json.loads((root / "synthetic.json").read_text())


@pytest.mark.parametrize("bands", ["s1", "s2", "all"])
def test_torchgeo_bigearthnetv2_reads_the_generated_files(bigearthnet_v2_root, bands):
    manifest = _manifest(bigearthnet_v2_root)
    spec = manifest["spec"]
    assert manifest["layout"] == "torchgeo.datasets.BigEarthNetV2"
    for split in ("train", "val", "test"):
        ds = BigEarthNetV2(str(bigearthnet_v2_root), split=split, bands=bands)
        assert len(ds) == spec[f"num_{split}"]
    sample = ds[0]
    for sensor in ("s1", "s2") if bands == "all" else (bands,):
        key = f"image_{sensor}" if bands == "all" else "image"
        # TorchGeo resamples every band file to 120 x 120, whatever the patch size
        assert sample[key].shape == (len(CHANNELS[sensor]), 120, 120)
    assert sample["label"].shape == (19,)
    assert sample["mask"].shape == (1, spec["patch_size"], spec["patch_size"])
    labels = torch.stack([ds[i]["label"] for i in range(len(ds))])
    assert labels.sum(0).tolist() == manifest["label_counts"]["test"]["19"]
    assert (labels.sum(1) >= 1).all()


def test_same_spec_same_patches_in_both_layouts(bigearthnet_root, bigearthnet_v2_root):
    """The v2 layout carries v1's patches: the same pixels and the same 19-class labels."""
    assert _manifest(bigearthnet_root)["spec"] == _manifest(bigearthnet_v2_root)["spec"]
    v1 = BigEarthNet(str(bigearthnet_root), split="val", bands="all", num_classes=19)
    v2 = BigEarthNetV2(str(bigearthnet_v2_root), split="val", bands="all")
    for i in range(len(v2)):
        a, b = v1[i], v2[i]
        assert torch.equal(a["label"], b["label"])
        assert torch.equal(a["image"], torch.cat([b["image_s1"], b["image_s2"]]))


def test_metadata_table_and_reference_maps(bigearthnet_v2_root):
    table = pd.read_parquet(bigearthnet_v2_root / "metadata.parquet")
    assert {"patch_id", "s1_name", "labels", "split", "country"} <= set(table.columns)
    assert table["split"].value_counts().to_dict() == {"train": 12, "validation": 4, "test": 4}
    row = table.iloc[0]
    tile = row["patch_id"].rsplit("_", 2)[0]
    band = bigearthnet_v2_root / "BigEarthNet-S2" / tile / row["patch_id"]
    with rasterio.open(band / f"{row['patch_id']}_B05.tif") as src:
        assert (src.width, src.dtypes[0], src.res[0]) == (6, "uint16", 20)
    # The pixel map shows the patch's labels and nothing else (TorchGeo maps codes to labels).
    ds = BigEarthNetV2(str(bigearthnet_v2_root), split="train", bands="s1")
    shown = 0
    for i in range(len(ds)):
        sample = ds[i]
        ordinals = set(sample["mask"].unique().tolist()) & set(range(19))
        assert ordinals <= set(torch.nonzero(sample["label"]).flatten().tolist())
        shown += len(ordinals)
    assert shown > 0


def test_generation_skips_its_own_layout_only(tmp_path):
    generate_bigearthnet_like(tmp_path, TINY)
    assert not (tmp_path / "metadata.parquet").exists()
    generate_bigearthnet_v2_like(tmp_path, TINY)  # same spec, other layout: written
    assert _manifest(tmp_path)["layout"] == "torchgeo.datasets.BigEarthNetV2"
    mtime = (tmp_path / "metadata.parquet").stat().st_mtime_ns
    generate_bigearthnet_v2_like(tmp_path, TINY)
    assert (tmp_path / "metadata.parquet").stat().st_mtime_ns == mtime


def test_fused_training_split_yields_multi_hot_targets(bigearthnet_v2_root):
    dm = BigEarthNetV2DataModule(root=str(bigearthnet_v2_root), batch_size=4)
    dm.setup("fit")
    assert dm.bands == list(BIGEARTHNET_ALL_BANDS) and dm.multilabel
    assert dm.class_names == list(BigEarthNetV2.class_set)
    assert dm.train_counts == _manifest(bigearthnet_v2_root)["label_counts"]["train"]["19"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 14, 120, 120) and "mask" not in batch
    assert batch["label"].shape == (4, 19) and set(batch["label"].unique().tolist()) <= {0, 1}
    stats = dm.band_stats  # dB then reflectance, each band with its own statistics
    assert all(m < 0 for m in stats.mean[:2]) and all(m > 100 for m in stats.mean[2:])


def test_band_list_and_class_subset(bigearthnet_v2_root):
    names = ["Marine waters", "Coniferous forest"]
    dm = BigEarthNetV2DataModule(root=str(bigearthnet_v2_root), bands=["VV", "B04"],
                                 classes=names, batch_size=2)
    dm.setup("fit")
    assert dm.sensors == "all" and dm.num_classes == 2 and dm.class_names == names
    full = BigEarthNetV2(str(bigearthnet_v2_root), split="train", bands="all")
    order = [BigEarthNetV2.class_set.index(n) for n in names]
    counts = _manifest(bigearthnet_v2_root)["label_counts"]["train"]["19"]
    assert dm.train_counts == [counts[i] for i in order]
    labels = torch.stack([s["label"] for s in dm.train_dataset])
    assert labels.shape[1] == 2 and (labels.sum(1) >= 1).all()  # scenes of neither left out
    first = dm.train_dataset.indices[0]
    ours, theirs = dm.train_dataset[0], full[first]
    assert torch.equal(ours["image"], torch.stack([theirs["image_s1"][1], theirs["image_s2"][3]]))
    assert torch.equal(ours["label"], theirs["label"][order])


def test_recipe_data_section_builds_it(bigearthnet_v2_root):
    dm = build_datamodule({"class_path": "rs_metapeft.data.BigEarthNetV2DataModule",
                           "init_args": {"root": str(bigearthnet_v2_root), "bands": "s1"}})
    assert dm.bands == list(BIGEARTHNET_S1_BANDS) and dm.root == str(bigearthnet_v2_root)
    assert BigEarthNetV2DataModule().root == "data/bigearthnet_v2"


def test_synthetic_v2_datamodule_generates_on_first_use(tmp_path):
    dm = SyntheticBigEarthNetV2DataModule(root=str(tmp_path), num_train=6, num_val=2,
                                          num_test=2, patch_size=6, bands="s2",
                                          classes=["Arable land", "Pastures"], batch_size=2)
    dm.prepare_data()
    assert len(pd.read_parquet(tmp_path / "metadata.parquet")) == 10
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 12, 120, 120) and batch["label"].shape == (2, 2)


def test_only_19_classes():
    with pytest.raises(ValueError, match="BigEarthNetV2 labels come in 19 classes; set 19"):
        BigEarthNetV2DataModule(num_classes=43)


def test_missing_files_are_named(tmp_path):
    (tmp_path / "BigEarthNet-S2").mkdir()
    dm = BigEarthNetV2DataModule(root=str(tmp_path), bands="s2")
    with pytest.raises(FileNotFoundError, match=r"BigEarthNetV2 root .* has no BigEarthNet-S1/, "
                                                r"Reference_Maps/, metadata\.parquet.*"
                                                r"data\.download: true"):
        dm.setup("fit")


def test_missing_patch_folder_is_named(tmp_path, bigearthnet_v2_root):
    root = tmp_path / "ben"
    shutil.copytree(bigearthnet_v2_root, root)
    patch = pd.read_parquet(root / "metadata.parquet")["patch_id"][3]
    shutil.rmtree(root / "BigEarthNet-S2" / patch.rsplit("_", 2)[0] / patch)
    dm = BigEarthNetV2DataModule(root=str(root), bands="s2")
    with pytest.raises(FileNotFoundError, match=rf"S2 patch {patch} .*metadata\.parquet"):
        dm.setup("fit")


def test_unknown_label_in_the_table_is_named(tmp_path, bigearthnet_v2_root):
    root = tmp_path / "ben"
    shutil.copytree(bigearthnet_v2_root, root)
    table = pd.read_parquet(root / "metadata.parquet")
    # a 43-class name in the first (training) row
    table["labels"] = [["Road and rail networks"] if i == 0 else list(names)
                       for i, names in enumerate(table["labels"])]
    table.to_parquet(root / "metadata.parquet")
    dm = BigEarthNetV2DataModule(root=str(root), bands="s1")
    with pytest.raises(ValueError, match=rf"{table['patch_id'][0]} has the label 'Road and rail"):
        dm.setup("fit")


def test_missing_pyarrow_names_the_extra(bigearthnet_v2_root, monkeypatch, capsys, tmp_path):
    import importlib.util

    from rs_metapeft.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else find_spec(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'rs_metapeft\[bigearthnet\]'"):
        generate_bigearthnet_v2_like(tmp_path, TINY)
    # through the command line: one line naming the extra, no traceback
    assert main(["fit", "--config", "bigearthnet_v2_s1s2",
                 f"--data.init_args.root={bigearthnet_v2_root}", "--data.init_args.num_workers=0",
                 f"--trainer.default_root_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "pyarrow" in err and "rs_metapeft[bigearthnet]" in err and "Traceback" not in err
