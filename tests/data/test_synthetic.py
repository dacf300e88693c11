import rasterio
import torch
from torchgeo.datasets import EuroSAT

from rs_metapeft.data import ChipFolder
from rs_metapeft.data.synthetic import EUROSAT_BAND_ORDER, exponential_counts

from ..conftest import TINY_SPEC


def test_exponential_profile():
    counts = exponential_counts(300, 10, 100)
    assert counts[0] == 300 and counts[-1] == 3
    assert counts == sorted(counts, reverse=True)


def test_torchgeo_eurosat_reads_the_generated_files(tiny_s2_root):
    expected = exponential_counts(TINY_SPEC.max_per_class, TINY_SPEC.num_classes,
                                  TINY_SPEC.imbalance_ratio)
    train = EuroSAT(tiny_s2_root, split="train")
    assert len(train.classes) == TINY_SPEC.num_classes
    assert torch.bincount(torch.tensor(train.targets)).tolist() == expected
    sample = train[0]
    assert sample["image"].shape == (13, TINY_SPEC.image_size, TINY_SPEC.image_size)
    for split, per_class in (("val", TINY_SPEC.val_per_class), ("test", TINY_SPEC.test_per_class)):
        ds = EuroSAT(tiny_s2_root, split=split, bands=("B04", "B03", "B02"))
        assert torch.bincount(torch.tensor(ds.targets)).tolist() == [per_class] * 4
        assert ds[0]["image"].shape[0] == 3


def test_files_are_georeferenced_uint16_with_band_names(tiny_s2_root):
    path = next((tiny_s2_root / "ds").rglob("*.tif"))
    with rasterio.open(path) as src:
        assert src.count == 13 and src.dtypes[0] == "uint16"
        assert src.crs.to_epsg() == 32632
        assert src.descriptions == EUROSAT_BAND_ORDER


def test_classes_differ_in_spectrum(tiny_s2_root):
    train = EuroSAT(tiny_s2_root, split="train", bands=("B08", "B04"))
    water = [s["image"] for s in train if train.classes[int(s["label"])] == "Forest"]
    assert water and torch.stack(water)[:, 0].mean() > 1500  # vegetation is bright in NIR


def test_generation_is_deterministic_and_skips_existing(tmp_path, tiny_s2_root):
    from rs_metapeft.data.synthetic import generate_eurosat_like

    again = generate_eurosat_like(tmp_path, TINY_SPEC)
    a = EuroSAT(again, split="train")[3]["image"]
    b = EuroSAT(tiny_s2_root, split="train")[3]["image"]
    assert torch.equal(a, b)
    mtime = (again / "synthetic.json").stat().st_mtime
    generate_eurosat_like(again, TINY_SPEC)
    assert (again / "synthetic.json").stat().st_mtime == mtime


def test_sar_twin_is_db_backscatter(tiny_s1_root):
    ds = ChipFolder(tiny_s1_root, split="train", bands=("VV", "VH"))
    image = ds[0]["image"]
    assert image.shape == (2, TINY_SPEC.image_size, TINY_SPEC.image_size)
    assert image.max() < 20 and image.min() > -60  # dB range, not linear power
    water = [s["image"] for s in ds if ds.classes[int(s["label"])] == "SeaLake"]
    urban = [s["image"] for s in ds if ds.classes[int(s["label"])] == "Industrial"]
    if water and urban:
        assert torch.stack(water)[:, 0].mean() < torch.stack(urban)[:, 0].mean()
