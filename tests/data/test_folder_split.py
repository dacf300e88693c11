"""Folders without split lists are split seeded; the split is recorded; paths stay inside."""

import csv
import re

import numpy as np
import pytest
from lightning.pytorch import Trainer

from rs_metapeft.data import ChipFolder, DataFileError, GeoTiffFolder, GeoTiffFolderDataModule
from rs_metapeft.data.summary import dataset_summary
from tests.data.fakes import make_fake_geotiff_folder, write_geotiff

SPLITS = ("train", "val", "test")


def _files(dm, split):
    return {str(p) for p, _ in dm.make_dataset(split).samples}


def test_a_folder_without_lists_gets_a_seeded_stratified_split(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=[20, 10, 2], size=8)
    with pytest.warns(UserWarning, match=r"classes \['water'\] .* fewer than 3 chips"):
        dm = GeoTiffFolderDataModule(root=str(root), batch_size=4, val_fraction=0.2,
                                     test_fraction=0.1)
        summary = dataset_summary(dm)
    # crop: 4 val, 2 test of 20; forest: 2 and 1 of 10; water (2 chips) stays in training.
    assert summary["counts"] == {"train": [14, 7, 2], "val": [4, 2, 0], "test": [2, 1, 0]}
    assert dm.train_counts == [14, 7, 2]
    files = {split: _files(dm, split) for split in SPLITS}
    assert not files["train"] & files["test"] and not files["val"] & files["test"]
    assert not files["train"] & files["val"]
    assert len(set().union(*files.values())) == 32
    again = GeoTiffFolderDataModule(root=str(root), val_fraction=0.2, test_fraction=0.1)
    other = GeoTiffFolderDataModule(root=str(root), val_fraction=0.2, test_fraction=0.1,
                                    split_seed=1)
    assert _files(again, "test") == files["test"] != _files(other, "test")


def test_a_csv_without_split_column_is_split_and_a_partial_one_refused(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=[8, 8, 8], size=8)
    rows = [(f"{c}/{c}_{i}.tif", c) for c in ("crop", "forest", "water") for i in range(8)]
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    sizes = [len(GeoTiffFolder(root, split=s, csv_file="labels.csv", scan=False)) for s in SPLITS]
    assert sizes == [18, 3, 3]  # 15 % of 8 rounds to 1 per class for val and for test
    with open(root / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerow(("crop/crop_0.tif", "crop", "test"))
    with pytest.raises(DataFileError, match=r"labels.csv, line 2: the row has no split while "
                                            r"other rows have one"):
        GeoTiffFolder(root, csv_file="labels.csv", scan=False)


def test_partial_split_lists_are_refused(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, size=8)
    (root / "split-train.txt").write_text("crop/crop_0.tif\n")
    with pytest.raises(DataFileError, match=r"split-train.txt but no split-test.txt"):
        GeoTiffFolder(root, split="test", scan=False)


def test_the_split_is_recorded_in_the_run_folder_and_reads_back(tmp_path):
    root = make_fake_geotiff_folder(tmp_path / "chips", per_class=[8, 6, 4], size=8)
    dm = GeoTiffFolderDataModule(root=str(root), batch_size=4)
    dm.trainer = Trainer(default_root_dir=str(tmp_path / "run"), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False)
    dm.setup("fit")
    folder = tmp_path / "run" / "data_split"
    assert sorted(p.name for p in folder.iterdir()) == ["test.txt", "train.txt", "val.txt"]
    for split in SPLITS:  # "<path relative to the root> <class>", as split lists are written
        for line in (folder / f"{split}.txt").read_text().splitlines():
            assert re.fullmatch(r"(crop|forest|water)/\1_\d\.tif \1", line), line
    # The recorded lists are split lists: read back, they give the same chips in every split.
    recorded = {s: str(folder / f"{s}.txt") for s in SPLITS}
    replay = GeoTiffFolderDataModule(root=str(root), split_files=recorded)
    for split in SPLITS:
        assert _files(replay, split) == _files(dm, split)
    assert len((folder / "train.txt").read_text().splitlines()) == len(dm.train_dataset)


def test_test_images_that_were_trained_on_stop_the_run(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=4, size=8)
    chips = sorted(str(p.relative_to(root)) for p in root.glob("*/*.tif"))
    for split in SPLITS:
        (root / f"split-{split}.txt").write_text("\n".join(chips) + "\n")
    dm = GeoTiffFolderDataModule(root=str(root), batch_size=4)
    with pytest.raises(DataFileError, match=r"12 of the 12 test images .* are also training "
                                            r"images.*data.allow_train_test_overlap: true"):
        dm.setup("fit")
    with pytest.raises(DataFileError, match="also training images"):
        dm.setup("test")
    allowed = GeoTiffFolderDataModule(root=str(root), batch_size=4, allow_train_test_overlap=True)
    with pytest.warns(UserWarning, match="12 of the 12 test images"):
        allowed.setup("test")
    assert len(allowed.test_dataset) == 12


@pytest.mark.parametrize("bad", ["../outside/secret.tif", "ABSOLUTE",
                                 "crop/../../outside/secret.tif"])
def test_csv_rows_and_list_lines_must_stay_inside_the_root(tmp_path, bad):
    root = make_fake_geotiff_folder(tmp_path / "chips", size=8, with_csv=True)
    secret = write_geotiff(tmp_path / "outside" / "secret.tif", np.ones((4, 8, 8), np.uint16))
    bad = str(secret) if bad == "ABSOLUTE" else bad
    with open(root / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerow((bad, "crop", "train"))
    with pytest.raises(DataFileError, match=rf"labels.csv, line 14: path '{re.escape(bad)}' "
                                            r"points to .*secret.tif, outside the dataset root"):
        GeoTiffFolder(root, csv_file="labels.csv", scan=False)
    (root / "split-train.txt").write_text(f"crop/crop_0.tif\n{bad} crop\n")
    with pytest.raises(DataFileError, match=r"split-train.txt, line 2: path .* outside"):
        GeoTiffFolder(root, scan=False)
    with pytest.raises(DataFileError, match=r"split-train.txt, line 2: path .* outside"):
        ChipFolder(root, bands=("B02", "B03", "B04", "B08"))
    # An absolute path inside the root is fine.
    (root / "split-train.txt").write_text(f"{root / 'crop' / 'crop_0.tif'} crop\n")
    assert len(GeoTiffFolder(root, scan=False)) == 1


def test_a_chip_folder_without_lists_says_what_to_do(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, size=8)
    with pytest.raises(DataFileError, match="split-train.txt does not exist.*GeoTiffFolderDataMod"):
        ChipFolder(root, bands=("B02", "B03", "B04", "B08"))
