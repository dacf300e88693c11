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
    assert torch.allclose(torch.tensor(stats.std, dtype=torch.float64), stacked.std(1, unbiased=False), atol=1e-9)


def test_nan_pixels_are_ignored():
    image = torch.ones(2, 4, 4)
    image[0, 0, 0] = float("nan")
    stats = compute_band_statistics([image], ["VV", "VH"])
    assert stats.mean == [1.0, 1.0] and stats.count == [15, 16]


def test_band_count_mismatch_names_the_bands():
    with pytest.raises(ValueError, match="data.bands"):
        compute_band_statistics([torch.zeros(3, 2, 2)], ["VV", "VH"])
