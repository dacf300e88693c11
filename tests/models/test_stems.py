import pytest
import torch

from rs_metapeft.bands import UnknownBandError
from rs_metapeft.data.synthetic import EUROSAT_BAND_ORDER
from rs_metapeft.models import STEMS, SpectralViTClassifier, WavelengthHyperStem, rgb_band_indices
from rs_metapeft.peft import PeftConfig

from ..conftest import TINY_VIT
from .weights import IMG, NAME, PATCH, loaded_reference, save_weights

S2 = list(EUROSAT_BAND_ORDER)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(save_weights(tmp_path_factory.mktemp("w") / "vit.safetensors"))


def _model(bands, stem, weights, **kw):
    torch.manual_seed(0)
    return SpectralViTClassifier(bands, 5, NAME, weights, IMG, PATCH, stem=stem,
                                 backbone_kwargs=TINY_VIT, **kw).eval()


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("bands", [S2, ["VV", "VH"]])
def test_every_stem_takes_c_bands(stem, bands, weights):
    model = _model(bands, stem, weights, peft=PeftConfig(positions=["q", "v"]))
    logits = model(torch.randn(2, len(bands), IMG, IMG))
    assert logits.shape == (2, 5)
    # The stem always trains, also where it replaced a (frozen) backbone layer.
    assert all(p.requires_grad for p in model.spectral_stem.parameters())
    assert (stem in ("patch_expand", "wavelength_hyper")) == (model.spectral_stem is
                                                            model.backbone.patch_embed.proj)


@pytest.mark.parametrize("stem", ["band_mix", "patch_expand", "rgb_select"])
@pytest.mark.parametrize("bands", [S2, ["VV", "VH"]])
def test_initial_stem_equals_pretrained_model_on_rgb_bands(stem, bands, weights):
    model = _model(bands, stem, weights)
    x = torch.randn(3, len(bands), IMG, IMG)
    rgb = x[:, rgb_band_indices(bands)]
    expected = loaded_reference()(rgb)
    assert torch.allclose(model.features(x), expected, atol=1e-5)


def test_patch_expand_init_is_band_aware(weights):
    model = _model(S2, "patch_expand", weights)
    stem = model.spectral_stem
    rgb = loaded_reference().patch_embed.proj.weight
    coastal, nir = S2.index("B01"), S2.index("B08")
    # Visible coastal band starts from the blue kernel; NIR from the scaled RGB mean.
    assert torch.allclose(stem.kernel[:, coastal], rgb[:, 2])
    assert torch.allclose(stem.kernel[:, nir], rgb.mean(1) * 3 / len(S2))
    assert stem.gain[coastal] == 0 and stem.gain[S2.index("B04")] == 1
    # Gains of the other bands receive gradient, so they grow in with training.
    model.train()
    model(torch.randn(2, len(S2), IMG, IMG)).sum().backward()
    assert stem.gain.grad[nir] != 0


def test_wavelength_hyper_accepts_an_unseen_band_set(weights):
    model = _model(S2, "wavelength_hyper", weights)
    stem = model.spectral_stem
    assert isinstance(stem, WavelengthHyperStem)
    seen = model(torch.randn(2, len(S2), IMG, IMG))
    unseen = ["landsat8:red", "landsat8:nir", "landsat7:swir1", "HH"]
    stem.set_bands(unseen)
    assert stem.weight.shape[1] == len(unseen)
    feats = model.backbone(torch.randn(2, len(unseen), IMG, IMG))
    assert feats.shape == (2, model.backbone.num_features) and torch.isfinite(feats).all()
    assert seen.shape == (2, 5)
    with pytest.raises(ValueError, match="set_bands"):
        model.backbone(torch.randn(2, 3, IMG, IMG))
    with pytest.raises(UnknownBandError, match="'B99'"):
        stem.set_bands(["B99"])


def test_wavelength_hyper_kernels_follow_wavelength(weights):
    stem = _model(S2, "wavelength_hyper", weights).spectral_stem
    rgb = loaded_reference().patch_embed.proj.weight
    # The red band gets (mostly) the red kernel; a SWIR band gets a generated one of the same size.
    weight = stem.weight.detach()
    red = S2.index("B04")
    cos = torch.nn.functional.cosine_similarity(weight[:, red].flatten(), rgb[:, 0].flatten(), 0)
    assert cos > 0.9
    # Its MLP and bank are trainable and shared across bands: a gradient reaches them from any band.
    stem.set_bands(["B11"])
    stem.weight.sum().backward()
    assert stem.mlp[-1].weight.grad.abs().sum() > 0


def test_unknown_stem_is_named(weights):
    with pytest.raises(ValueError, match="model.stem"):
        _model(S2, "tiling", weights)
