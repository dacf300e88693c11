"""gamma has one home: found by type, parametrised and bounded in one place, split from phi."""

import math

import pytest
import torch

from rs_metapeft.models import create_backbone
from rs_metapeft.peft import (
    PARAMETRISATIONS,
    PeftConfig,
    clamp_modulators,
    effective_scale_map,
    gamma_parameters,
    initial_scale_map,
    inject_peft,
    modulators,
    split_parameters,
    switched_off,
)
from rs_metapeft.peft.lora import LoRA
from rs_metapeft.tasks import MetaPEFTTask

from ..tasks.factory import make_dm, make_trainer


def _layerscale_vit():
    torch.manual_seed(0)
    return create_backbone("vit_tiny_patch16_224", None, 32, 8, depth=2, init_values=1e-5)


def test_modulators_are_found_by_type_not_by_the_name_gamma():
    vit = _layerscale_vit()
    layerscale = {n for n, _ in vit.named_parameters() if n.endswith("ls1.gamma")}
    assert layerscale  # timm's LayerScale calls its weight "gamma" too
    modules = inject_peft(vit, PeftConfig(positions=["q", "v", "adaptformer"]))
    gammas = gamma_parameters(vit)
    assert len(gammas) == len(modules) == len(modulators(vit))
    assert not layerscale & set(gammas)
    phi, gamma = split_parameters(vit)
    assert not layerscale & (set(phi) | set(gamma))  # frozen: in neither split
    assert not set(phi) & set(gamma)
    assert {id(p) for p in gamma.values()} == {id(m.gamma) for m in modules}


@pytest.mark.parametrize("kind", PARAMETRISATIONS)
def test_every_parametrisation_starts_at_one_and_respects_its_bounds(kind):
    lora = LoRA(4, 4, 1, 2.0, 0.0, 0, "v", kind)
    assert torch.allclose(lora.modulation(), torch.tensor(1.0))
    assert lora.effective_scale() == pytest.approx(2.0)
    lora.set_modulation(3.0)
    assert lora.modulation().item() == pytest.approx(3.0, rel=1e-6)
    lora.clamp_(0.5, 2.0)
    assert lora.modulation().item() == pytest.approx(2.0, rel=1e-6)
    lora.set_modulation(0.1)
    lora.clamp_(0.5, 2.0)
    assert lora.modulation().item() == pytest.approx(0.5, rel=1e-6)
    lora.set_modulation(0.1)
    lora.clamp_(0.0, None)  # 0 is a bound a positive gamma never crosses: no constraint
    assert lora.modulation().item() == pytest.approx(0.1, rel=1e-6)


def test_log_gamma_moves_by_factors_and_positive_ones_refuse_zero():
    lora = LoRA(4, 4, 1, 1.0, 0.0, 0, "v", "log")
    with torch.no_grad():
        lora.gamma.add_(math.log(4.0))
    assert lora.modulation().item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="log modulators cannot be set"):
        lora.set_modulation(-1.0)
    lora.set_modulation(0.0)  # off, for good: theta = -inf, where the gradient is 0
    assert lora.modulation().item() == 0.0
    with pytest.raises(ValueError, match="unreachable"):
        lora.clamp_(None, 0.0)
    identity = LoRA(4, 4, 1, 1.0, 0.0, 0, "v", "identity")
    identity.set_modulation(-1.0)
    identity.clamp_(0.0, None)
    assert identity.modulation().item() == 0.0


def test_scale_maps_and_switched_off_modules():
    vit = _layerscale_vit()
    inject_peft(vit, PeftConfig(positions=["q", "fc1"], alpha=2.0))
    q0, fc1_1 = [m for m in modulators(vit) if (m.layer, m.position) in {(0, "q"), (1, "fc1")}]
    q0.set_modulation(0.01)
    fc1_1.set_modulation(4.0)
    scales, initial = effective_scale_map(vit), initial_scale_map(vit)
    assert initial[0]["q"] == 2.0
    assert scales[0]["q"] == pytest.approx(0.02) and scales[1]["fc1"] == pytest.approx(8.0)
    off = switched_off(scales, initial, 0.05)
    assert [(o["layer"], o["position"]) for o in off] == [(0, "q")]
    clamp_modulators(vit, 0.1, 3.0)
    assert effective_scale_map(vit)[1]["fc1"] == pytest.approx(6.0, rel=1e-6)


def test_a_meta_step_never_touches_layerscale(tiny_s2_root, tmp_path):
    dm = make_dm(tiny_s2_root)
    task = MetaPEFTTask(bands=dm.bands, num_classes=4, img_size=32, patch_size=8,
                        backbone_kwargs={"depth": 2, "init_values": 1e-5},
                        peft={"positions": ["q", "v", "fc2"]},
                        meta={"every_n_steps": 1, "warmup_steps": 1, "lr": 0.5})
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()
              if n.endswith((".ls1.gamma", ".ls2.gamma"))}
    gammas_before = {n: p.detach().clone() for n, p in gamma_parameters(task.model).items()}
    assert len(before) == 4
    make_trainer(tmp_path, max_steps=4).fit(task, datamodule=dm)
    assert task.outer_steps == 3
    after = dict(task.model.named_parameters())
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    moved = [n for n, p in gamma_parameters(task.model).items()
             if not torch.equal(p, gammas_before[n])]
    assert moved  # the modulators themselves did move
