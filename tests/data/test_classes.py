"""``data.classes`` on every datamodule: a subset of the dataset's classes, in label order."""

import json
import re

import pytest
import yaml
from torchgeo.datasets import CopernicusBenchEuroSATS1, So2Sat

from rs_metapeft.cli import main
from rs_metapeft.data import (
    EuroSATS1LongTailDataModule,
    GeoTiffFolderDataModule,
    So2SatLongTailDataModule,
    SyntheticSARDataModule,
)
from tests.data.fakes import make_fake_eurosat_s1, make_fake_geotiff_folder, make_fake_so2sat


def _relabelled_consistently(dm, names):
    """Every training sample's new label names the class its original label named."""
    ds = dm.train_dataset
    for i in range(len(ds)):
        original = int(ds.dataset[ds.indices[i]]["label"])
        assert dm.class_names[int(ds[i]["label"])] == names[original]


def test_so2sat_classes_without_training_images_say_how_to_leave_them_out(tmp_path):
    root = make_fake_so2sat(tmp_path, per_class=[3] * 8 + [0] * 9, size=8)
    present = list(So2Sat.classes[:8])  # 'Bush, scrub' (a comma) is among the absent ones
    dm = So2SatLongTailDataModule(root=str(root), bands=["VV"], batch_size=4)
    message = f"leave them out with data.classes: {json.dumps(present)}"
    with pytest.raises(ValueError, match=re.escape(message)):
        dm.setup("fit")
    chosen = present[::-1]
    dm = So2SatLongTailDataModule(root=str(root), bands=["VV"], batch_size=4, classes=chosen)
    dm.setup("fit")
    assert dm.num_classes == 8 and dm.class_names == chosen and dm.train_counts == [3] * 8
    assert len(dm.val_dataset) == 8  # the validation file holds one image of all 17 classes
    _relabelled_consistently(dm, list(So2Sat.classes))
    assert next(iter(dm.train_dataloader()))["label"].max() < 8


def test_eurosat_s1_subset_of_classes_in_every_split(tmp_path):
    root = make_fake_eurosat_s1(tmp_path, per_class=3, size=8)
    dm = EuroSATS1LongTailDataModule(root=str(root), batch_size=2, classes=["SeaLake", "Forest"])
    dm.setup("fit")
    dm.setup("test")
    assert dm.class_names == ["SeaLake", "Forest"] and dm.train_counts == [3, 3]
    assert len(dm.val_dataset) == len(dm.test_dataset) == 2
    _relabelled_consistently(dm, list(CopernicusBenchEuroSATS1.classes))
    wrong = EuroSATS1LongTailDataModule(root=str(root), classes=["SeaLake", "Glacier"])
    with pytest.raises(ValueError, match=r"data.classes: \['Glacier'\] are not classes of the "
                                         r"train split; choose among AnnualCrop"):
        wrong.setup("fit")


def test_chip_folders_take_a_subset_in_order(tmp_path, tiny_s1_root):
    root = make_fake_geotiff_folder(tmp_path / "chips", per_class=[6, 6, 6], size=8)
    with pytest.warns(UserWarning, match=r"left out 6 chips of classes not in data.classes "
                                         r"\(forest;"):
        dm = GeoTiffFolderDataModule(root=str(root), classes=["water", "crop"], batch_size=2)
    dm.setup("fit")
    assert dm.num_classes == 2 and dm.class_names == ["water", "crop"]
    assert dm.train_counts == [4, 4]
    # A class's seeded split does not depend on which other classes are chosen.
    full = GeoTiffFolderDataModule(root=str(root), batch_size=2)
    for split in ("train", "val", "test"):
        chosen = {p for p, _ in dm.make_dataset(split).samples}
        assert chosen == {p for p, y in full.make_dataset(split).samples if y != 1}
    sar = SyntheticSARDataModule(root=str(tiny_s1_root), classes=["Forest", "AnnualCrop"],
                                 batch_size=2)
    sar.setup("fit")
    assert sar.num_classes == 2 and sar.class_names == ["Forest", "AnnualCrop"]


def test_classes_in_a_recipe_reach_the_datamodule(tmp_path, capsys):
    root = make_fake_so2sat(tmp_path / "so2sat", per_class=[3] * 8 + [0] * 9, size=8)
    recipe = {"data": {"class_path": "rs_metapeft.data.So2SatLongTailDataModule",
                       "init_args": {"root": str(root), "bands": ["VV"], "batch_size": 4,
                                     "classes": ["Open low rise", "Compact high rise"]}}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["stats", "--config", str(path), "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["classes"] == ["Open low rise", "Compact high rise"]
    assert summary["counts"] == {"train": [3, 3], "val": [1, 1], "test": [1, 1]}
    assert "Open low rise" in capsys.readouterr().out
