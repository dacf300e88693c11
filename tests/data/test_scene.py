import numpy as np
import pytest
import rasterio

from rs_metapeft.data import SceneChipsDataModule
from rs_metapeft.data.folder import DataFileError
from rs_metapeft.data.scene import SceneChips, chip_label
from tests.data.fakes import make_fake_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_fake_scene(tmp_path_factory.mktemp("scene"), points=True)


def test_chip_label_rules():
    mask = np.array([[0, 0, 0], [2, 2, 3], [2, 3, 3]])
    assert chip_label(mask, "majority", purity=0.5) == 2
    assert chip_label(mask, "majority", purity=0.8) is None
    assert chip_label(mask, "centre", purity=0.0) == 2
    assert chip_label(np.zeros((2, 2), int)) is None


def test_grid_chips_from_a_label_raster(scene):
    ds = SceneChips(scene["image"], scene["labels"], split="train", chip_size=16,
                    split_fractions=(1, 0, 0), purity=1.0)
    with rasterio.open(scene["labels"]) as src:
        grid = src.read(1)[::16, ::16]
    # 16-px chips aligned with the 16-px label blocks: one pure chip per labelled block
    expected = np.bincount(grid[grid > 0], minlength=4)[1:]
    assert np.bincount(ds.targets, minlength=3).tolist() == expected.tolist()
    sample = ds[0]
    assert sample["image"].shape == (4, 16, 16)
    # the image carries the class as a 100 x value offset: the chip agrees with its label
    assert abs(sample["image"].mean().item() / 100 - ds.class_values[sample["label"]]) < 0.2


def test_random_chips_and_spatial_strips_do_not_overlap(scene):
    kw = dict(chip_size=16, sampler="random", length=40, purity=0.6)
    train = SceneChips(scene["image"], scene["labels"], split="train", **kw)
    test = SceneChips(scene["image"], scene["labels"], split="test", **kw)
    top_of_test = max(q[1].stop for q, _ in test.samples)
    bottom_of_train = min(q[1].start for q, _ in train.samples)
    assert top_of_test <= bottom_of_train


def test_labelled_points_through_vector_dataset(scene):
    ds = SceneChips(scene["image"], scene["points"], label_field="class", chip_size=16,
                    split_fractions=(1, 0, 0), purity=1.0)
    raster = SceneChips(scene["image"], scene["labels"], chip_size=16,
                        split_fractions=(1, 0, 0), purity=1.0)
    assert sorted(ds.targets) == sorted(raster.targets)


def test_datamodule_over_a_scene(scene):
    dm = SceneChipsDataModule(image=str(scene["image"]), labels=str(scene["labels"]),
                              bands=["B02", "B03", "B04", "B08"], num_classes=3, batch_size=4,
                              chip_options={"chip_size": 16, "split_fractions": [0.5, 0.25, 0.25]})
    dm.setup("fit")
    assert sum(dm.train_counts) == len(dm.train_dataset) and dm.class_names == ["1", "2", "3"]
    assert next(iter(dm.train_dataloader()))["image"].shape == (4, 4, 16, 16)


def test_missing_scene_file(tmp_path, scene):
    with pytest.raises(DataFileError, match="does not exist"):
        SceneChips(tmp_path / "nope.tif", scene["labels"])
