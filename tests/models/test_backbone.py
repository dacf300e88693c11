import pytest
import torch

from rs_metapeft.models import BackboneWeightsError, create_backbone

from ..conftest import TINY_VIT
from .weights import IMG, NAME, PATCH, loaded_reference, save_weights


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_float16_headless_file_loads_exactly(tmp_path, suffix):
    path = save_weights(tmp_path / f"w{suffix}")
    model = create_backbone(NAME, str(path), IMG, PATCH, **TINY_VIT).eval()
    ref = loaded_reference()
    for (k, v), (k2, v2) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        assert k == k2 and v.dtype == torch.float32 and torch.equal(v, v2), k
    x = torch.randn(2, 3, IMG, IMG)
    assert torch.allclose(model(x), ref(x), atol=1e-6)


def test_image_size_is_resampled_by_timm(tmp_path):
    path = save_weights(tmp_path / "w.pth")
    model = create_backbone(NAME, str(path), 2 * IMG, PATCH, **TINY_VIT)
    assert model.pos_embed.shape[1] == (2 * IMG // PATCH) ** 2 + 1
    assert model(torch.randn(1, 3, 2 * IMG, 2 * IMG)).shape == (1, model.num_features)


def test_patch_size_is_resampled_by_timm(tmp_path):
    path = save_weights(tmp_path / "w.pth")
    model = create_backbone(NAME, str(path), IMG, 4, **TINY_VIT)
    assert model.patch_embed.proj.weight.shape[-1] == 4
    assert model(torch.randn(1, 3, IMG, IMG)).shape == (1, model.num_features)


def test_missing_and_mismatched_files_are_explained(tmp_path):
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        create_backbone(NAME, str(tmp_path / "nope.pth"), IMG, PATCH, **TINY_VIT)
    path = save_weights(tmp_path / "w.pth")
    with pytest.raises(BackboneWeightsError, match="do not fit"):
        create_backbone("vit_small_patch16_224", str(path), IMG, PATCH, depth=2)
    with pytest.raises(BackboneWeightsError, match="neither a file"):
        create_backbone(NAME, "not-a-weights-id", IMG, PATCH, **TINY_VIT)


def test_hub_offline_is_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneWeightsError, match="HF_HUB_OFFLINE"):
        create_backbone(NAME, "hub", IMG, PATCH, **TINY_VIT)
