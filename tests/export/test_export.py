import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rs_metapeft.data.synthetic import EUROSAT_BAND_ORDER
from rs_metapeft.export import (
    ADAPTER_FILE,
    ExportError,
    adapter_state,
    load_export,
    read_manifest,
    save_export,
    write_manifest,
)
from rs_metapeft.models import SpectralViTClassifier
from rs_metapeft.peft import POSITIONS, PeftConfig, gamma_map
from rs_metapeft.peft.lora import LoRALinear
from rs_metapeft.peft.merge import merge_lora, prune_modules

from ..conftest import TINY_VIT
from ..models.weights import IMG, NAME, PATCH, save_weights

BANDS = list(EUROSAT_BAND_ORDER)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(save_weights(tmp_path_factory.mktemp("w") / "vit.pth"))


def _trained(weights, peft, stem="band_mix", head="linear"):
    """A model with every trainable tensor moved off its initial value, as after training."""
    torch.manual_seed(0)
    model = SpectralViTClassifier(BANDS, 4, NAME, weights, IMG, PATCH, peft, head, TINY_VIT, stem)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad or name.endswith("gamma"):
                p.add_(torch.randn_like(p) * 0.05)
        model.normalizer.set_statistics(torch.rand(len(BANDS)).tolist(),
                                        (torch.rand(len(BANDS)) + 0.5).tolist())
    return model.eval()


def _x():
    torch.manual_seed(2)
    return torch.randn(3, len(BANDS), IMG, IMG)


@pytest.mark.parametrize("stem", ["patch_expand", "wavelength_hyper"])
def test_adapter_only_export_reproduces_the_logits(tmp_path, weights, stem):
    model = _trained(weights, PeftConfig(positions=list(POSITIONS), gamma_shape="channel"), stem,
                     "cosine")
    manifest_path = save_export(model, tmp_path, classes=list("abcd"), train_counts=[50, 20, 5, 1],
                                groups=["many", "medium", "few", "few"])
    manifest = json.loads(manifest_path.read_text())
    tensors = load_file(str(tmp_path / ADAPTER_FILE))
    assert "backbone.blocks.0.attn.qkv.weight" not in tensors  # frozen base weights stay out
    assert not manifest["base"]["included"] and manifest["stem"] == stem
    assert manifest["base"]["file"]["path"] == str(Path(weights).resolve())
    assert set(tensors) == set(adapter_state(model))
    assert manifest["bands"] == BANDS and manifest["classes"] == list("abcd")
    assert manifest["groups"][2] == "few" and manifest["gamma"]["0"]["q"] == pytest.approx(
        gamma_map(model)[0]["q"])
    assert set(manifest["versions"]) == {"rs_metapeft", "torch", "timm"}
    assert manifest["band_mean"] == pytest.approx(model.normalizer.mean.tolist())
    loaded = load_export(tmp_path)
    assert torch.equal(loaded(_x()), model(_x()))


@pytest.mark.parametrize("method", ["bitfit", "vpt_deep", "full"])
def test_baselines_export_what_they_train(tmp_path, weights, method):
    model = _trained(weights, PeftConfig(method=method))
    save_export(model, tmp_path)
    tensors = load_file(str(tmp_path / ADAPTER_FILE))
    assert ("backbone.blocks.0.attn.qkv.bias" in tensors) == (method in ("bitfit", "full"))
    assert ("backbone.blocks.0.attn.qkv.weight" in tensors) == (method == "full")
    assert torch.equal(load_export(tmp_path)(_x()), model(_x()))


def test_random_base_is_exported_whole(tmp_path):
    model = _trained(None, PeftConfig(positions=["q", "v"]))
    manifest = json.loads(save_export(model, tmp_path).read_text())
    assert manifest["base"] == {"included": True}
    assert torch.equal(load_export(tmp_path)(_x()), model(_x()))


def test_merged_lora_gives_the_same_logits(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=list(POSITIONS), gamma_shape="channel"))
    before = model(_x())
    assert merge_lora(model) == 6 * len(model.backbone.blocks)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert {m.position for m in model.peft_modules} == {"adaptformer", "adapter"}
    after = model(_x())
    assert torch.allclose(after, before, atol=1e-5)
    model.merged = True
    save_export(model, tmp_path)
    assert torch.allclose(load_export(tmp_path)(_x()), before, atol=1e-5)


def test_pruning_removes_small_gamma_modules_and_survives_export(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=["q", "v", "fc1", "adaptformer", "adapter"]))
    for m in model.peft_modules:
        if m.position in ("v", "adaptformer") or m.layer == 1:
            m.set_modulation(1e-4)
    full = model(_x())
    removed = prune_modules(model, 1e-2)
    assert (0, "v") in removed and (0, "adaptformer") in removed and (1, "q") in removed
    assert {(m.layer, m.position) for m in model.peft_modules} == {(0, "q"), (0, "fc1"),
                                                                  (0, "adapter")}
    pruned = model(_x())
    assert torch.allclose(pruned, full, atol=1e-2)  # gamma ~ 0 modules did next to nothing
    model.pruned = removed
    save_export(model, tmp_path)
    loaded = load_export(tmp_path)
    assert len(loaded.peft_modules) == 3
    assert torch.equal(loaded(_x()), pruned)
    with pytest.raises(ValueError, match=">= 0"):
        prune_modules(model, -1)


def test_bad_exports_are_refused(tmp_path, weights):
    with pytest.raises(ExportError, match="manifest.json does not exist"):
        load_export(tmp_path)
    model = _trained(weights, PeftConfig(positions=["q"]))
    save_export(model, tmp_path)
    other = save_weights(tmp_path / "other.pth", seed=7)
    with pytest.raises(ExportError, match="differ from the ones"):
        load_export(tmp_path, weights=str(other))
    (tmp_path / ADAPTER_FILE).write_bytes(b"garbage")
    with pytest.raises(ExportError, match="checksum"):
        load_export(tmp_path)


@pytest.mark.parametrize("edit", [
    lambda m: m["classes"].__setitem__(0, "Lake"),
    lambda m: m["model"].__setitem__("weights", "hub"),
    lambda m: m["model"].__setitem__("backbone_kwargs", {"depth": 1}),
    lambda m: m["band_mean"].__setitem__(0, 0.0),
    lambda m: m.pop("manifest_sha256"),
], ids=["class", "weights", "backbone_kwargs", "statistics", "checksum removed"])
def test_an_edited_manifest_is_refused_naming_the_file(tmp_path, weights, edit):
    save_export(_trained(weights, PeftConfig(positions=["q"])), tmp_path, classes=list("abcd"))
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=f"{path}.*(checksum|manifest_sha256)"):
        load_export(tmp_path)


def test_tensors_file_must_stay_inside_the_export_folder(tmp_path, weights):
    folder = tmp_path / "export"
    save_export(_trained(weights, PeftConfig(positions=["q"])), folder)
    (tmp_path / "outside.safetensors").write_bytes((folder / ADAPTER_FILE).read_bytes())
    manifest = read_manifest(folder)
    manifest["tensors"]["file"] = str(tmp_path / "outside.safetensors")  # re-signed, so only
    write_manifest(folder, manifest)                                     # the path is wrong
    with pytest.raises(ExportError, match=r"tensors.file .*outside the export folder"):
        load_export(folder)


def test_hub_weights_are_never_downloaded_unless_asked(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=["q"]))
    save_export(model, tmp_path)
    manifest = read_manifest(tmp_path)
    manifest["model"]["weights"] = "hub"  # as an adapter trained on timm's hub weights records
    manifest["base"].update(weights="hub", file=None, hub=f"timm:{NAME}")
    write_manifest(tmp_path, manifest)
    with pytest.raises(ExportError, match="--allow-download"):
        load_export(tmp_path)
    assert torch.equal(load_export(tmp_path, weights=weights)(_x()), model(_x()))


def test_base_weights_are_found_by_name_beside_the_export_or_asked_for(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=["q", "v"]))
    folder = tmp_path / "export"
    save_export(model, folder)
    manifest = read_manifest(folder)
    manifest["base"]["file"]["path"] = str(tmp_path / "gone" / "vit.pth")  # moved since
    write_manifest(folder, manifest)
    with pytest.raises(ExportError) as err:
        load_export(folder)
    message = str(err.value)
    for part in ("vit.pth", manifest["base"]["file"]["sha256"], "--weights FILE", "weights=FILE",
                 "--include-backbone"):
        assert part in message
    shutil.copy(weights, tmp_path / "vit.pth")  # the export folder's parent
    assert torch.equal(load_export(folder)(_x()), model(_x()))
    assert torch.equal(load_export(folder, weights=weights)(_x()), model(_x()))


def test_base_weights_that_differ_in_their_tensors_are_refused(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=["q"]))
    save_export(model, tmp_path)
    manifest = read_manifest(tmp_path)
    manifest["base"]["tensors_sha256"] = "0" * 64  # as if timm had resampled them differently
    write_manifest(tmp_path, manifest)
    with pytest.raises(ExportError, match="differ from the ones this adapter was trained on"):
        load_export(tmp_path)


def test_a_format_2_export_still_loads(tmp_path, weights):
    model = _trained(weights, PeftConfig(positions=["q", "v"]))
    save_export(model, tmp_path)
    manifest = read_manifest(tmp_path)
    base = manifest.pop("base")
    manifest["tensors"].pop("groups")
    manifest.update(format_version=2, base_included=False,
                    weights_sha256=base["file"]["sha256"])
    write_manifest(tmp_path, manifest)
    assert torch.equal(load_export(tmp_path)(_x()), model(_x()))
    with pytest.raises(ExportError, match="differ from the ones"):
        load_export(tmp_path, weights=str(save_weights(tmp_path / "other.pth", seed=7)))
