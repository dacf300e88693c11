import pytest
import torch

from rs_metapeft.models import create_backbone
from rs_metapeft.peft import POSITIONS, PeftConfig, gamma_parameters, inject_peft, peft_modules
from rs_metapeft.peft.lora import LoRA

from ..conftest import TINY_VIT


def _vit():
    torch.manual_seed(0)
    return create_backbone("vit_tiny_patch16_224", None, 32, 8, **TINY_VIT).eval()


def _randomise(modules):
    # Fresh PEFT modules are no-ops (B and Up start at zero); give them weights to see them.
    torch.manual_seed(1)
    for m in modules:
        for name, p in m.named_parameters():
            if not name.endswith("gamma"):
                p.data.normal_(0, 0.2)


def test_gamma_scales_the_module_output():
    lora = LoRA(16, 8, rank=2, alpha=2.0, dropout=0.0, layer=0, position="q")
    lora.lora_B.data.normal_()
    x = torch.randn(5, 16)
    base = lora(x)
    lora.set_modulation(0.3)
    assert torch.allclose(lora(x), 0.3 * base, atol=1e-6)


@pytest.mark.parametrize("gamma_param", ["identity", "softplus"])
def test_gamma_one_is_initial_and_softplus_stays_positive(gamma_param):
    lora = LoRA(4, 4, 1, 1.0, 0.0, 0, "v", gamma_param)
    assert torch.allclose(lora.modulation(), torch.tensor(1.0))
    lora.gamma.data.fill_(-50.0)
    assert (lora.modulation() >= 0).all() if gamma_param == "softplus" else lora.modulation() < 0


def test_injection_keeps_backbone_keys_and_adds_a_gamma_per_module():
    reference = set(_vit().state_dict())
    vit = _vit()
    modules = inject_peft(vit, PeftConfig(positions=list(POSITIONS)))
    keys = set(vit.state_dict())
    assert reference <= keys
    assert len(modules) == len(vit.blocks) * len(POSITIONS)
    assert len(gamma_parameters(vit)) == len(modules)
    assert {(m.layer, m.position) for m in peft_modules(vit)} == {
        (layer, p) for layer in range(len(vit.blocks)) for p in POSITIONS
    }
    assert not any(p.requires_grad for n, p in vit.named_parameters() if n in reference)


def test_gamma_zero_equals_the_frozen_backbone_and_gamma_changes_the_output():
    x = torch.randn(2, 3, 32, 32)
    frozen = _vit()(x)
    vit = _vit()
    modules = inject_peft(vit, PeftConfig(positions=list(POSITIONS)))
    _randomise(modules)
    adapted = vit(x)
    assert not torch.allclose(adapted, frozen, atol=1e-4)
    for m in modules:
        m.set_modulation(0.0)
    assert torch.allclose(vit(x), frozen, atol=1e-6)


def test_layers_subset_and_bad_layers():
    vit = _vit()
    modules = inject_peft(vit, PeftConfig(positions=["q", "v"], layers=[-1]))
    assert {m.layer for m in modules} == {1}
    with pytest.raises(ValueError, match="model.peft.layers"):
        inject_peft(_vit(), PeftConfig(positions=["q"], layers=[5]))
    with pytest.raises(ValueError, match="model.peft.positions"):
        PeftConfig(positions=["qq"])
