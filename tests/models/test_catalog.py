"""`rs-metapeft backbones`: the listed timm ViTs work, and `show` prints what a recipe needs."""

import inspect

import pytest
import torch
import yaml

from rs_metapeft.cli import main
from rs_metapeft.models import SpectralViTClassifier
from rs_metapeft.models.catalog import TIMM_VITS, show
from rs_metapeft.peft import PeftConfig
from rs_metapeft.tasks import MetaPEFTTask

ALL_POSITIONS = PeftConfig(positions=["q", "k", "v", "o", "fc1", "fc2", "adaptformer"])


@pytest.mark.parametrize("vit", TIMM_VITS, ids=lambda v: v.name)
def test_listed_timm_vits_take_every_peft_position_and_a_patch_stem(vit):
    size = 2 * vit.patch_size
    model = SpectralViTClassifier(["B04", "B03", "B02", "B08"], 3, vit.name, None, size,
                                  vit.patch_size, ALL_POSITIONS, backbone_kwargs={"depth": 1},
                                  stem="patch_expand")
    assert (model.backbone.embed_dim, model.backbone.blocks[0].attn.num_heads) == (
        vit.width, vit.heads)
    assert len(model.peft_modules) == 7
    assert model(torch.randn(1, 4, size, size)).shape == (1, 3)


def test_list_names_timm_vits_and_torchgeo_weights_with_bands(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "vit_small_patch16_224" in out and "augreg_in21k_ft_in1k" in out
    s2_bands = "B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12"
    assert f"Sentinel-2 L1C TOA, 13 bands: {s2_bands}" in out
    assert "Sentinel-1 GRD, 2 bands: VV VH" in out
    assert "ViTSmall16_Weights.SENTINEL2_ALL_DINO" in out and "224 px" in out
    assert "DOFABase16_Weights" in out  # listed as not usable, with the reason


def _recipe_keys() -> set[str]:
    return set(inspect.signature(MetaPEFTTask).parameters)


@pytest.mark.parametrize("name", ["ViTSmall16_Weights.SENTINEL1_GRD_MAE",
                                  "torchgeo:ViTBase16_Weights.SENTINEL2_ALL_MAE",
                                  "vit_small_patch14_dinov2"])
def test_show_prints_a_recipe_snippet(name, capsys):
    assert main(["backbones", "show", name]) == 0
    out = capsys.readouterr().out
    snippet = yaml.safe_load(out)
    assert set(snippet["model"]) <= _recipe_keys()
    if "_Weights" in name:
        assert snippet["model"]["weights"] == "torchgeo:" + name.removeprefix("torchgeo:")
        assert len(snippet["data"]["init_args"]["bands"]) in (2, 13)
        assert "# File: " in out and "checkpoints" in out  # where the file goes
    else:
        assert snippet["model"] == {**snippet["model"], "backbone": name, "patch_size": 14}
    assert out.strip() == show(name)


def test_show_unknown_name_is_one_line(capsys):
    assert main(["backbones", "show", "vit_gigantic"]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert "unknown backbone 'vit_gigantic'" in line and "vit_small_patch16_224" in line


def test_backbones_is_a_subcommand_with_help(capsys):
    assert main(["--help"]) == 0
    assert "  backbones " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["backbones", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "rs-metapeft backbones show" in out
