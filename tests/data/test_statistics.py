import pytest
import torch

from rs_metapeft.data.statistics import compute_band_statistics


def test_streaming_statistics_match_the_whole_tensor():
    torch.manual_seed(0)
    images = [torch.randn(3, 8, 8) * torch.tensor([1.0, 5.0, 100.0])[:, None, None] + 7
              for _ in range(9)]
    stats = compute_band_statistics(iter(images), ["B04", "B03", "B02"])
    stacked = torch.stack(images).transpose(0, 1).reshape(3, -1).double()
    assert torch.allclose(torch.tensor(stats.mean, dtype=torch.float64), stacked.mean(1), atol=1e-9)
    expected_std = stacked.std(1, unbiased=False)
    assert torch.allclose(torch.tensor(stats.std, dtype=torch.float64), expected_std, atol=1e-9)


def test_nan_pixels_are_ignored():
    image = torch.ones(2, 4, 4)
    image[0, 0, 0] = float("nan")
    stats = compute_band_statistics([image], ["VV", "VH"])
    assert stats.mean == [1.0, 1.0] and stats.count == [15, 16]


def test_band_count_mismatch_names_the_bands():
    with pytest.raises(ValueError, match="data.bands"):
        compute_band_statistics([torch.zeros(3, 2, 2)], ["VV", "VH"])


def test_percentiles_and_nodata_value():
    from rs_metapeft.data.statistics import compute_band_statistics as stats_of

    torch.manual_seed(0)
    images = [torch.arange(1000, dtype=torch.float32).reshape(1, 1, 10, 100) for _ in range(3)]
    images[0][0, 0, 0, :10] = -9999
    stats = stats_of(images, ["VV"], nodata=-9999, max_samples=500)
    assert stats.count == [2990] and stats.mean[0] > 0
    assert abs(stats.p02[0] - 20) < 15 and abs(stats.p98[0] - 980) < 15
    again = stats_of(images, ["VV"], nodata=-9999, max_samples=500)
    assert again.p02 == stats.p02  # seeded sample: deterministic


def test_cache_is_keyed_by_dataset_and_bands(tmp_path):
    from rs_metapeft.data.statistics import (
        BandMismatchError,
        BandStatistics,
        cached_band_statistics,
        statistics_cache_path,
    )

    calls = []

    def compute():
        calls.append(1)
        return BandStatistics(("VV", "VH"), [1.0, 2.0], [0.5, 0.5], [4, 4], [0.0, 1.0], [2.0, 3.0])

    first = cached_band_statistics(tmp_path, "ds-a", ["VV", "VH"], compute)
    second = cached_band_statistics(tmp_path, "ds-a", ["VV", "VH"], compute)
    assert first == second and len(calls) == 1
    cached_band_statistics(tmp_path, "ds-b", ["VV", "VH"], compute)
    assert len(calls) == 2
    assert statistics_cache_path(tmp_path, "ds-a", ["VH", "VV"]) != statistics_cache_path(
        tmp_path, "ds-a", ["VV", "VH"])
    with pytest.raises(BandMismatchError, match=r"made for bands \['VV', 'VH'\].*\['VH', 'VV'\]"):
        first.check_bands(["VH", "VV"])


def test_datamodule_statistics_use_the_cache(tmp_path, tiny_s1_root):
    from rs_metapeft.data import SyntheticSARDataModule
    from tests.conftest import TINY_SPEC

    kwargs = dict(root=str(tiny_s1_root), num_classes=4, stats_cache=str(tmp_path / "cache"))
    dm = SyntheticSARDataModule(**kwargs)
    dm.spec = TINY_SPEC
    dm.setup("fit")
    files = list((tmp_path / "cache").glob("band-stats-*.json"))
    assert len(files) == 1
    dm2 = SyntheticSARDataModule(**kwargs, imbalance_ratio=100.0)
    dm2.spec = TINY_SPEC
    dm2.setup("fit")  # another training subset: another cache entry
    assert len(list((tmp_path / "cache").glob("band-stats-*.json"))) == 2
    assert dm.band_stats.mean != dm2.band_stats.mean


def test_checkpoint_with_other_bands_is_refused_on_load():
    """The task's load hook (every resume, validate, test) checks the checkpoint's bands."""
    from rs_metapeft.bands import BandMismatchError
    from rs_metapeft.tasks import MetaPEFTTask
    from tests.conftest import TINY_VIT

    task = MetaPEFTTask(["VV", "VH"], 4, img_size=32, patch_size=8, backbone_kwargs=TINY_VIT)
    info = {"bands": ["vv", "vh"], "classes": ["a", "b", "c", "d"]}  # aliases: the same bands
    task.on_load_checkpoint({"rs_metapeft": info})
    assert task.class_names == ["a", "b", "c", "d"]
    swapped = {"rs_metapeft": {**info, "bands": ["VH", "VV"]}}
    with pytest.raises(BandMismatchError, match=r"checkpoint was made for bands \['VH', 'VV'\]"):
        task.on_load_checkpoint(swapped)
    task.on_load_checkpoint({"state_dict": {}})  # a foreign checkpoint records no bands
