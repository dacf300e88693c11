"""Spectral stems on fused Sentinel-1 + Sentinel-2 input (BigEarthNet ``all``: VH, VV, 12 S2)."""

import pytest
import torch

from rs_metapeft.data.bigearthnet import BIGEARTHNET_ALL_BANDS
from rs_metapeft.models import STEMS, SpectralViTClassifier, rgb_band_indices

from ..conftest import TINY_VIT
from .weights import IMG, NAME, PATCH, loaded_reference, save_weights

FUSED = list(BIGEARTHNET_ALL_BANDS)
SAR_CHANNELS = [FUSED.index("VH"), FUSED.index("VV")]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(save_weights(tmp_path_factory.mktemp("w") / "vit.safetensors"))


def _model(stem, weights):
    torch.manual_seed(0)
    return SpectralViTClassifier(FUSED, 5, NAME, weights, IMG, PATCH, stem=stem,
                                 backbone_kwargs=TINY_VIT)


def test_optical_bands_feed_rgb_in_a_fused_input():
    assert [FUSED[i] for i in rgb_band_indices(FUSED)] == ["B04", "B03", "B02"]


@pytest.mark.parametrize("stem", ["band_mix", "patch_expand", "rgb_select"])
def test_fused_stem_starts_as_the_pretrained_model_on_the_rgb_bands(stem, weights):
    model = _model(stem, weights).eval()
    x = torch.randn(2, len(FUSED), IMG, IMG)
    expected = loaded_reference()(x[:, rgb_band_indices(FUSED)])
    assert torch.allclose(model.features(x), expected, atol=1e-5)


@pytest.mark.parametrize("stem", STEMS)
def test_fused_stem_maps_sar_onto_the_backbone_once_trained(stem, weights):
    """One step on the stem, and the backbone sees the backscatter (``rgb_select`` never does)."""
    model = _model(stem, weights)
    x = torch.randn(4, len(FUSED), IMG, IMG)
    assert model(x).shape == (4, 5)
    params = list(model.spectral_stem.parameters())
    if params:
        optimizer = torch.optim.SGD(params, lr=0.1)
        model(x).pow(2).sum().backward()
        optimizer.step()
    model.eval()
    other_sar = x.clone()
    other_sar[:, SAR_CHANNELS] = torch.randn(4, 2, IMG, IMG)
    with torch.no_grad():
        moved = (model(x) - model(other_sar)).abs().max()
    if stem == "rgb_select":
        assert moved == 0
    else:
        assert moved > 1e-4
