import numpy as np
import pytest
import torch

from rs_metapeft.data import (
    DataFileError,
    GeoTiffFolder,
    GeoTiffFolderDataModule,
    SARPreprocessing,
    SARShipChips,
    SARShipChipsDataModule,
)
from tests.data.fakes import make_fake_geotiff_folder, make_fake_sar_ships, write_geotiff


def test_band_names_come_from_the_files(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, bands=("B02", "B03", "B04", "B08"))
    dm = GeoTiffFolderDataModule(root=str(root), batch_size=4)
    assert dm.bands == ["B02", "B03", "B04", "B08"] and dm.num_classes == 3
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 4, 16, 16) and batch["image"].dtype == torch.float32


def test_files_without_descriptions_need_recipe_bands(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, describe_bands=False)
    with pytest.raises(DataFileError, match="no band description.*data.bands"):
        GeoTiffFolderDataModule(root=str(root))
    dm = GeoTiffFolderDataModule(root=str(root), bands=["blue", "green", "red", "nir"])
    assert dm.num_classes == 3


@pytest.mark.parametrize("dtype", ["int16", "float32", "uint8"])
def test_any_dtype_and_nodata_masked(tmp_path, dtype):
    root = make_fake_geotiff_folder(tmp_path, bands=("VV", "VH"), dtype=dtype, size=8,
                                    nodata=0, per_class=4, with_csv=True)
    ds = GeoTiffFolder(root, bands=("VV", "VH"))
    image = ds[0]["image"]
    assert torch.isnan(image[:, :2, :2]).all() and not torch.isnan(image[:, 4:, 4:]).any()
    dm = GeoTiffFolderDataModule(root=str(root), csv_file="labels.csv", batch_size=2)
    dm.setup("fit")
    assert dm.band_stats.count[0] == 6 * (64 - 4)  # nodata pixels are not counted
    filled = dm.train_aug(next(iter(dm.train_dataloader())))["image"]
    assert not torch.isnan(filled).any()


def test_crs_and_nodata_of_the_training_chips_are_described(tmp_path):
    root = make_fake_geotiff_folder(tmp_path / "a", nodata=0, with_csv=True)
    dm = GeoTiffFolderDataModule(root=str(root), csv_file="labels.csv", batch_size=2)
    dm.setup("fit")
    # chip size and ground resolution: scenes are tiled at the training chips' footprint
    assert dm.data_description() == {"crs": "EPSG:32632", "nodata": 0.0,
                                     "nodata_from_recipe": False, "chip_size": [16, 16],
                                     "resolution": [10.0, 10.0]}
    dm = GeoTiffFolderDataModule(root=str(root), csv_file="labels.csv", batch_size=2,
                                 nodata=7, classes=["crop", "forest"])
    dm.setup("fit")
    assert dm.data_description()["nodata"] == 7 and dm.data_description()["nodata_from_recipe"]
    write_geotiff(root / "crop" / "crop_0.tif", np.ones((4, 16, 16), "uint16"),
                  ("B02", "B03", "B04", "B08"), epsg=32633)
    dm = GeoTiffFolderDataModule(root=str(root), csv_file="labels.csv", batch_size=2)
    dm.setup("fit")
    assert "crs" not in dm.data_description()  # mixed CRS: nothing to check scenes against


def test_csv_index_with_split_column(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=[6, 3, 3], with_csv=True)
    train = GeoTiffFolder(root, split="train", csv_file="labels.csv")
    val = GeoTiffFolder(root, split="val", csv_file="labels.csv")
    assert train.classes == val.classes == ["crop", "forest", "water"]
    test = GeoTiffFolder(root, split="test", csv_file="labels.csv")
    assert np.bincount(train.targets).tolist() == [4, 2, 2]
    assert np.bincount(val.targets).tolist() == [1, 1, 1]
    assert np.bincount(test.targets, minlength=3).tolist() == [1, 0, 0]


def test_label_outside_the_class_list_names_the_row(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, with_csv=True)
    with open(root / "labels.csv", "a") as f:
        f.write("crop/crop_0.tif,glacier,train\n")
    # data.classes chooses the classes: a label outside it is left out, named with its row.
    with pytest.warns(UserWarning, match=r"left out 1 chips.*\(glacier; first: .*labels.csv, "
                                         r"line 14\)"):
        GeoTiffFolder(root, csv_file="labels.csv", classes=["crop", "forest", "water"])
    with open(root / "labels.csv", "a") as f:
        f.write("crop/crop_0.tif,7,train\n")
    with pytest.raises(DataFileError, match=r"labels.csv, line 15: label '7'"):
        GeoTiffFolder(root, csv_file="labels.csv", classes=["crop", "forest", "water"])


def test_empty_class_folder_and_missing_root(tmp_path):
    root = make_fake_geotiff_folder(tmp_path)
    (root / "ice").mkdir()
    with pytest.raises(DataFileError, match="ice holds no .tif"):
        GeoTiffFolder(root)
    with pytest.raises(DataFileError, match="does not exist"):
        GeoTiffFolder(tmp_path / "missing")


def _break(root):
    """One truncated file, one with the wrong band count, one nodata-only chip.

    A training list names every chip, so that all three are in the scanned split.
    """
    rels = sorted(str(p.relative_to(root)) for p in root.glob("*/*.tif"))
    (root / "split-train.txt").write_text("\n".join(rels) + "\n")
    good = (root / "crop" / "crop_0.tif").read_bytes()
    (root / "crop" / "crop_1.tif").write_bytes(good[: len(good) // 3])
    write_geotiff(root / "forest" / "forest_1.tif", np.ones((2, 16, 16), np.uint16))
    write_geotiff(root / "water" / "water_1.tif", np.full((4, 16, 16), 7, np.uint16), nodata=7)


def test_bad_files_stop_before_training_with_the_file_name(tmp_path):
    root = make_fake_geotiff_folder(tmp_path)
    _break(root)
    with pytest.raises(DataFileError, match=r"crop_1.tif.*\(2 more bad files"):
        GeoTiffFolder(root, bands=("B02", "B03", "B04", "B08"))


def test_bad_files_skipped_with_a_warning_and_count(tmp_path):
    root = make_fake_geotiff_folder(tmp_path)
    _break(root)
    with pytest.warns(UserWarning, match="skipped 3 of 12 files"):
        ds = GeoTiffFolder(root, bands=("B02", "B03", "B04", "B08"), on_bad_file="skip")
    assert len(ds) == 9 and {p.name for p, _ in ds.skipped} == {
        "crop_1.tif", "forest_1.tif", "water_1.tif"}
    for i in range(len(ds)):  # every remaining chip loads
        assert ds[i]["image"].shape == (4, 16, 16)


def test_sar_preprocessing_is_explicit():
    amp = np.array([[[0.1, 1.0, 10.0]]], np.float32)
    assert SARPreprocessing().apply(amp).tolist() == [[[-20.0, 0.0, 20.0]]]
    inten = SARPreprocessing(input="intensity", clip_db=(-5, 5)).apply(amp)
    assert inten.tolist() == [[[-5.0, 0.0, 5.0]]]
    with pytest.raises(ValueError, match="already in dB"):
        SARPreprocessing(input="db")


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_sar_ship_chips_from_folders(tmp_path, fmt):
    root = make_fake_sar_ships(tmp_path, fmt=fmt, per_class=[8, 4, 2])
    ds = SARShipChips(str(root), preprocessing=SARPreprocessing(clip_db=(-40, 10)))
    image = ds[0]["image"]
    assert image.shape == (1, 24, 24) and image.min() >= -40 and image.max() <= 10
    assert np.bincount(ds.targets).tolist() == [6, 2, 2]  # the seeded split's training share


def test_sar_ship_chips_from_list_files(tmp_path):
    root = make_fake_sar_ships(tmp_path, per_class=[8, 4, 4], list_file=True)
    dm = SARShipChipsDataModule(
        root=str(root), bands=["HH"], split_files={"train": "train.txt", "val": "test.txt"},
        preprocessing={"input": "amplitude", "clip_db": [-35, 5]}, batch_size=4,
        sampler="sqrt", check_test_split=False,
    )
    dm.setup("fit")
    assert dm.num_classes == 3 and dm.train_counts == [6, 3, 3]
    assert dm.preprocessing_record == {"input": "amplitude", "to_db": True,
                                       "clip_db": [-35, 5], "floor": 1e-6}
    assert -35 <= dm.band_stats.p02[0] < dm.band_stats.p98[0] <= 5
    with pytest.raises(DataFileError, match="no entry for split 'test'"):
        dm.setup("test")


def test_missing_test_split_fails_before_training(tmp_path):
    root = make_fake_sar_ships(tmp_path, per_class=[8, 4, 4], list_file=True)
    dm = SARShipChipsDataModule(root=str(root), split_files={"train": "train.txt",
                                                             "val": "test.txt"})
    with pytest.raises(DataFileError, match="no entry for split 'test'"):
        dm.setup("fit")
