import pytest
import yaml

from rs_metapeft.cli import main
from rs_metapeft.data.samplers import ClassAwareSampler
from rs_metapeft.data.summary import datamodule_from_recipe
from rs_metapeft.recipes import recipe_path
from tests.data.fakes import make_fake_geotiff_folder


def _recipe(tmp_path, root):
    recipe = yaml.safe_load(recipe_path("demo").read_text())
    recipe["trainer"].update(max_steps=2, max_epochs=1, default_root_dir=str(tmp_path / "run"),
                             enable_progress_bar=False, limit_val_batches=1)
    recipe["model"].update(img_size=32, backbone_kwargs={"depth": 1})
    recipe["model"]["meta"].update(every_n_steps=1, warmup_steps=0)
    recipe["data"] = {
        "class_path": "rs_metapeft.data.GeoTiffFolderDataModule",
        "init_args": {
            "root": str(root), "csv_file": "labels.csv", "batch_size": 4, "meta_batch_size": 2,
            "sampler": "class_balanced", "image_size": 32,
            "augment_options": {"resized_crop_scale": [0.5, 1.0]},
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_recipe_options_parse_into_the_datamodule(tmp_path):
    root = make_fake_geotiff_folder(tmp_path / "chips", per_class=[9, 6, 3], with_csv=True)
    dm, _ = datamodule_from_recipe(_recipe(tmp_path, root))
    dm.setup("fit")
    assert dm.bands == ["B02", "B03", "B04", "B08"] and dm.num_classes == 3
    assert isinstance(dm.train_dataloader().sampler, ClassAwareSampler)
    batch = dm.train_aug(next(iter(dm.train_dataloader())))
    assert batch["image"].shape == (4, 4, 32, 32)


@pytest.mark.slow
def test_fit_on_own_geotiffs_through_the_cli(tmp_path):
    root = make_fake_geotiff_folder(tmp_path / "chips", per_class=[9, 6, 3], with_csv=True)
    assert main(["fit", "--config", str(_recipe(tmp_path, root))]) == 0
    (report,) = (tmp_path / "run").rglob("report.json")
    # The split is recorded beside the report: the CSV's test rows (every fourth chip).
    test_list = (report.parent / "data_split" / "test.txt").read_text().splitlines()
    assert sorted(test_list) == ["crop/crop_3.tif crop", "crop/crop_7.tif crop",
                                 "forest/forest_3.tif forest"]
