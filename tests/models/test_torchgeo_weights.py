"""TorchGeo weights as backbones, loaded offline from fake files in a temporary torch hub cache.

The files go where TorchGeo's own ``WeightsEnum.get_state_dict`` (torch hub) looks first, so the
real loading path runs; nothing is downloaded (HF_HUB_OFFLINE=1 stops any attempt).
"""

import pytest
import torch

from rs_metapeft.data.synthetic import EUROSAT_BAND_ORDER
from rs_metapeft.models import STEMS, BackboneWeightsError, SpectralViTClassifier, create_backbone
from rs_metapeft.models.stem import target_band_indices
from rs_metapeft.models.torchgeo_weights import (
    list_torchgeo_weights,
    pretraining_moments,
    resolve_backbone_bands,
    torchgeo_weights,
    weights_settings,
)
from rs_metapeft.peft import PeftConfig

from .torchgeo_cache import S1_MAE, S2_DINO, reference, write_fake_weights

IMG = 32
TWO_BLOCKS = {"depth": 2}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of this test (TORCH_HOME), offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_catalog_describes_sentinel_weights():
    ids = {w.id for w in list_torchgeo_weights()}
    assert {S1_MAE, S2_DINO, "torchgeo:ViTBase16_Weights.SENTINEL2_ALL_MAE",
            "torchgeo:ViTSmall14_DINOv2_Weights.SENTINEL1_GRD_SOFTCON"} <= ids
    s2 = torchgeo_weights(S2_DINO)
    assert (s2.model, s2.patch_size, s2.img_size) == ("vit_small_patch16_224", 16, 224)
    assert len(s2.band_names) == s2.enum.meta["in_chans"] == 13
    # TorchGeo's "B8a" is the registry's B8A; its "B1" is Sentinel-2's B01.
    assert s2.bands[8] == "B8a" and s2.band_names[8] == "B8A" and s2.band_names[0] == "B01"
    assert torchgeo_weights(S1_MAE).band_names == ("VV", "VH")
    oli = torchgeo_weights("torchgeo:ViTSmall16_Weights.LANDSAT_OLI_TIRS_TOA_MOCO")
    assert [b.wavelength_nm for b in resolve_backbone_bands(oli.band_names)][-2:] == [10895, 12005]
    assert s2.cache_path.name == "vit_small_patch16_224_sentinel2_all_dino-36bcc127.pth"


def test_unsupported_weights_are_explained():
    with pytest.raises(BackboneWeightsError, match="DOFA is not a timm VisionTransformer"):
        torchgeo_weights("torchgeo:DOFABase16_Weights.DOFA_MAE")
    with pytest.raises(BackboneWeightsError, match="members of ViTSmall16_Weights: .*SENTINEL1"):
        torchgeo_weights("torchgeo:ViTSmall16_Weights.SENTINEL9")


def test_weights_set_architecture_patch_and_bands():
    backbone, patch, bands, notes = weights_settings(S2_DINO, "vit_tiny_patch16_224", None, None)
    assert (backbone, patch, len(bands)) == ("vit_small_patch16_224", 16, 13)
    assert "vit_tiny_patch16_224 was replaced by vit_small_patch16_224" in notes[0]
    # Given settings stay: a patch size (resampled) and the same architecture with a timm tag.
    assert weights_settings(S2_DINO, "vit_small_patch16_224.augreg_in21k", 8, None)[:2] == (
        "vit_small_patch16_224.augreg_in21k", 8)
    with pytest.raises(BackboneWeightsError, match="not the bands of"):
        weights_settings(S1_MAE, None, None, ["HH", "HV"])
    assert weights_settings("hub", "vit_tiny_patch16_224", 8, None) == (
        "vit_tiny_patch16_224", 8, None, [])


def test_missing_file_names_file_and_cache_folder(hub):
    with pytest.raises(BackboneWeightsError) as err:
        SpectralViTClassifier(["VV", "VH"], 3, weights=S1_MAE, img_size=IMG,
                              backbone_kwargs=TWO_BLOCKS)
    message = str(err.value)
    assert str(hub / "B2_vits16_mae_ep99_enc.pth") in message
    assert f"cache folder {hub}" in message and "HF_HUB_OFFLINE=1" in message
    assert "https://huggingface.co/wangyi111/SSL4EO-S12" in message


def test_cached_file_loads_through_torchgeo_and_is_resampled(hub):
    path = write_fake_weights(S1_MAE)
    assert path.parent == hub
    ref = reference(S1_MAE)
    model = create_backbone("vit_small_patch16_224", S1_MAE, IMG, 8, in_chans=2, **TWO_BLOCKS)
    got, want = model.state_dict(), ref.state_dict()
    for key in ("blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias", "cls_token"):
        assert torch.equal(got[key], want[key]), key
    # 224 px / 16 -> 32 px / 8: position and patch embeddings resampled by timm.
    assert model.pos_embed.shape[1] == (IMG // 8) ** 2 + 1
    assert model.patch_embed.proj.weight.shape == (384, 2, 8, 8)
    # The file has no final norm (like an MAE encoder): timm's initialisation stays.
    assert torch.equal(got["norm.weight"], torch.ones(384))


@pytest.mark.slow
def test_full_depth_file_loads_into_the_full_model(hub):
    write_fake_weights(S1_MAE, depth=12)
    model = create_backbone("vit_small_patch16_224", S1_MAE, IMG, None, in_chans=2)
    assert len(model.blocks) == 12 and model.patch_embed.proj.weight.shape[-1] == 16
    with pytest.raises(BackboneWeightsError, match="takes 2 bands"):
        create_backbone("vit_small_patch16_224", S1_MAE, IMG, None, in_chans=3)


def test_file_of_another_architecture_is_refused(hub):
    spec = torchgeo_weights(S1_MAE)
    write_fake_weights("torchgeo:ViTBase16_Weights.SENTINEL1_GRD_MAE")
    (hub / "B2_vitb16_mae_ep99_enc.pth").rename(spec.cache_path)
    with pytest.raises(BackboneWeightsError, match="do not fit timm model vit_small_patch16_224"):
        create_backbone("vit_small_patch16_224", S1_MAE, IMG, 16, in_chans=2, **TWO_BLOCKS)


def _model(bands, weights, stem="band_mix", **kw):
    torch.manual_seed(0)
    return SpectralViTClassifier(bands, 4, weights=weights, img_size=IMG, patch_size=16,
                                 backbone_kwargs=TWO_BLOCKS, stem=stem, **kw).eval()


def _pretrained_features(model, weights, x):
    """The reference model (resampled to the test size) on ``x``, as the backbone sees it."""
    ref = reference(weights)
    resized = create_backbone(ref.default_cfg["architecture"], None, IMG, 16,
                              in_chans=x.shape[1], **TWO_BLOCKS)
    state = {k: v for k, v in model.backbone.state_dict().items() if "patch_embed" not in k}
    state["patch_embed.proj.weight"] = ref.patch_embed.proj.weight
    state["patch_embed.proj.bias"] = ref.patch_embed.proj.bias
    resized.load_state_dict(state, strict=False)
    return resized.eval()(x)


@pytest.mark.parametrize("stem", STEMS)
def test_data_with_the_weights_bands_pass_through_every_stem(hub, stem):
    """EuroSAT's file order (B8A last) under aliases: reordered onto the weights' bands, exactly."""
    write_fake_weights(S2_DINO)
    aliases = {"B01": "B1", "B02": "blue", "B8A": "B8a", "B08": "nir"}
    bands = [aliases.get(b, b) for b in EUROSAT_BAND_ORDER]
    model = _model(bands, S2_DINO, stem)
    order = target_band_indices(bands, resolve_backbone_bands(model.backbone_bands))
    assert sorted(order) == list(range(13)) and order != list(range(13))
    x = torch.randn(2, 13, IMG, IMG)
    with torch.no_grad():
        got = model.backbone(model.stem(x))
        want = _pretrained_features(model, S2_DINO, x[:, order])
    assert torch.allclose(got, want, atol=1e-4)


def test_other_bands_map_onto_the_weights_bands(hub):
    """So2Sat's ten bands: the weights' B01, B09, B10 take the nearest band the data has."""
    write_fake_weights(S2_DINO)
    bands = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    model = _model(bands, S2_DINO, "band_mix", peft=PeftConfig(positions=["q", "v"]))
    picked = [bands[i] for i in target_band_indices(bands, resolve_backbone_bands(
        model.backbone_bands))]
    assert picked[0] == "B02" and picked[9] == "B8A" and picked[10] == "B11"
    assert model.stem.mix.weight.shape[:2] == (13, 10)
    # SAR data on SAR weights with other polarisations: co-pol feeds VV, cross-pol VH.
    write_fake_weights(S1_MAE)
    hh = _model(["HV", "HH"], S1_MAE, "rgb_select")
    assert hh.stem.index.tolist() == [1, 0]
    assert hh(torch.randn(2, 2, IMG, IMG)).shape == (2, 4)


def test_normalisation_gives_the_pretraining_moments(hub):
    write_fake_weights(S2_DINO)
    bands = ["B04", "B03", "B02", "B08"]
    model = _model(bands, S2_DINO)
    mean, std = pretraining_moments(S2_DINO)  # SSL4EO-S12 statistics / 10000, in B01.. order
    assert torch.allclose(model.normalizer.target_mean, torch.tensor([mean[3], mean[2], mean[1],
                                                                      mean[7]]))
    model.normalizer.set_statistics([1000.0] * 4, [500.0] * 4)  # data in DN
    x = 1000 + 500 * torch.randn(4096, 4, 2, 2)
    out = model.normalizer(x)
    assert torch.allclose(out.mean((0, 2, 3)), model.normalizer.target_mean, atol=0.01)
    assert torch.allclose(out.std((0, 2, 3)), model.normalizer.target_std, rtol=0.05)
    # normalization: data standardises only; SSL4EO-S12 Sentinel-1 weights saw standardised dB.
    assert torch.equal(_model(bands, S2_DINO, normalization="data").normalizer.target_std,
                       torch.ones(4))
    assert pretraining_moments(S1_MAE) == ([0.0, 0.0], [1.0, 1.0])
    assert pretraining_moments("torchgeo:ViTSmall16_Weights.LANDSAT_OLI_SR_MOCO") is None


def test_rebuilt_without_weights_is_the_same_model(hub):
    """Checkpoints and exports rebuild the model with weights=None: same shapes, same outputs."""
    write_fake_weights(S1_MAE)
    model = _model(["VV", "VH"], S1_MAE, "patch_expand", peft=PeftConfig(positions=["q", "v"]))
    model.normalizer.set_statistics([-12.0, -19.0], [5.0, 6.0])
    rebuilt = SpectralViTClassifier.from_config(model.config, weights=None).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 2, IMG, IMG)
    assert torch.allclose(rebuilt(x), model(x))
    # A state dict older than the normaliser's targets still loads (plain standardisation).
    old = {k: v for k, v in model.state_dict().items() if "target_" not in k}
    fresh = SpectralViTClassifier.from_config(model.config, weights=None)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.normalizer.target_std, torch.ones(2))


def test_local_multispectral_file_names_its_bands(tmp_path):
    """A local file of a 13-band ViT (e.g. TorchGeo's, copied by hand) with model.backbone_bands."""
    ref = reference(S2_DINO)
    path = tmp_path / "s2_vits16.pth"
    torch.save({k: v.half() for k, v in ref.state_dict().items()}, path)
    bands = list(torchgeo_weights(S2_DINO).band_names)
    model = SpectralViTClassifier(bands, 3, "vit_small_patch16_224", str(path), IMG, 16,
                                  backbone_kwargs=TWO_BLOCKS, backbone_bands=bands)
    assert torch.equal(model.backbone.blocks[1].mlp.fc1.weight, ref.blocks[1].mlp.fc1.weight)
    # The 13-band patch embedding is the file's, not re-initialised (timm adapts only RGB files).
    assert torch.equal(model.backbone.patch_embed.proj.weight, ref.patch_embed.proj.weight)
    assert torch.equal(model.stem.mix.weight[:, :, 0, 0], torch.eye(13))
